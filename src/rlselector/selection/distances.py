"""Blocked squared-ℓ2 distances: never an N × N matrix.

Geometry methods (k-center, herding, D2, Moderate-DS, ...) need distances between many rows and a
matrix of N rows. Computing them all at once costs N² floats (28.8 GB in float64 for 60,000 samples);
DeepCore's k-center even allocates a budget × N matrix. Everything here works on row blocks instead:
a block holds at most ``max_elements`` distances (``block_rows(n) · n ≤ max(max_elements, n)``), so
memory is O(max_elements + N), linear in N.

Distances use the expanded form ``‖a‖² + ‖b‖² − 2 a·b`` (one matrix product per block), clipped at 0.
The products run in the dtype of the inputs (float32 features stay float32: half the memory traffic);
norms are accumulated in float64. Callers that need accuracy on badly centred data centre the
features first (:func:`centred`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

MAX_BLOCK_ELEMENTS = 1 << 22
"""Distances held by one block: 4,194,304 (16 MB in float32, 32 MB in float64)."""
NORM_BLOCK_ELEMENTS = 1 << 18
"""Feature values cast to float64 at a time when computing row norms (2 MB)."""


def block_rows(n_cols: int, max_elements: int = MAX_BLOCK_ELEMENTS) -> int:
    """Rows per block so that one block of ``rows × n_cols`` distances holds at most ``max_elements``
    values (at least one row: a single row of ``n_cols`` is the floor)."""
    if max_elements < 1:
        raise ValueError(f"max_elements must be positive, got {max_elements}")
    return max(1, max_elements // max(int(n_cols), 1))


def row_blocks(n_rows: int, rows: int) -> Iterator[slice]:
    """Consecutive slices of at most ``rows`` rows covering ``range(n_rows)``."""
    for start in range(0, n_rows, rows):
        yield slice(start, min(start + rows, n_rows))


def sq_norms(x: np.ndarray) -> np.ndarray:
    """Row-wise squared norms in float64, shape (N,)."""
    x = np.asarray(x)
    out = np.empty(x.shape[0], dtype=np.float64)
    for block in row_blocks(x.shape[0], block_rows(x.shape[1] if x.ndim > 1 else 1, NORM_BLOCK_ELEMENTS)):
        part = x[block].astype(np.float64)
        out[block] = np.einsum("ij,ij->i", part, part)
    return out


def centred(x: np.ndarray) -> np.ndarray:
    """``x`` minus its column mean, in x's float dtype (distances unchanged, less cancellation)."""
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    return (x - x.mean(axis=0, dtype=np.float64).astype(dtype)).astype(dtype, copy=False)


def sq_distances(a: np.ndarray, b: np.ndarray, *, a_sq: np.ndarray | None = None, b_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared distances between every row of ``a`` and every row of ``b``: a (len(a), len(b)) float64
    block. The caller keeps ``len(a) · len(b)`` small (see :func:`blocked_sq_distances`)."""
    a = np.atleast_2d(a)
    b = np.atleast_2d(b)
    a_sq = sq_norms(a) if a_sq is None else a_sq
    b_sq = sq_norms(b) if b_sq is None else b_sq
    out = (a @ b.T).astype(np.float64, copy=False)
    out *= -2.0
    out += a_sq[:, None]
    out += b_sq[None, :]
    np.maximum(out, 0.0, out=out)
    return out


def sq_distances_to(x: np.ndarray, point: np.ndarray, *, x_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared distances from every row of ``x`` to one ``point``: (N,) float64, O(N) memory."""
    point = np.asarray(point, dtype=x.dtype).reshape(-1)
    x_sq = sq_norms(x) if x_sq is None else x_sq
    out = (x @ point).astype(np.float64, copy=False)
    out *= -2.0
    out += x_sq
    out += float(np.dot(point.astype(np.float64), point.astype(np.float64)))
    np.maximum(out, 0.0, out=out)
    return out


def blocked_sq_distances(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    max_elements: int = MAX_BLOCK_ELEMENTS,
    x_sq: np.ndarray | None = None,
    y_sq: np.ndarray | None = None,
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(rows of x, distances of those rows to every row of y)`` block by block.

    Each yielded block has shape ``(r, len(y))`` with ``r = block_rows(len(y), max_elements)`` (the last
    one fewer), so no block holds more than ``max(max_elements, len(y))`` values. ``y=None`` means x.
    """
    y = x if y is None else y
    x_sq = sq_norms(x) if x_sq is None else x_sq
    y_sq = (x_sq if y is x else sq_norms(y)) if y_sq is None else y_sq
    for rows in row_blocks(x.shape[0], block_rows(y.shape[0], max_elements)):
        yield rows, sq_distances(x[rows], y, a_sq=x_sq[rows], b_sq=y_sq)


def knn(x: np.ndarray, k: int, *, max_elements: int = MAX_BLOCK_ELEMENTS) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours of every row of ``x`` among the other rows (self excluded).

    Returns ``(indices, squared distances)``, both (N, k), sorted by distance (ties to the lower
    index). Memory: one distance block plus O(N·k).
    """
    n = x.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must lie in [1, {n - 1}] for {n} rows, got {k}")
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float64)
    for rows, block in blocked_sq_distances(x, max_elements=max_elements):
        local = np.arange(rows.stop - rows.start)
        block[local, local + rows.start] = np.inf  # a sample is not its own neighbour
        part = np.argpartition(block, k - 1, axis=1)[:, :k]
        d = np.take_along_axis(block, part, axis=1)
        # ties at the k-th distance: argpartition picks any of them; redo those rows by (distance, index)
        kth = d.max(axis=1)
        tied = np.flatnonzero((block <= kth[:, None]).sum(axis=1) > k)
        for row in tied:
            candidates = np.flatnonzero(block[row] <= kth[row])
            part[row] = candidates[np.argsort(block[row, candidates], kind="stable")[:k]]
        part.sort(axis=1)  # index order first, so the stable sort below breaks distance ties by index
        d = np.take_along_axis(block, part, axis=1)
        order = np.argsort(d, axis=1, kind="stable")
        indices[rows] = np.take_along_axis(part, order, axis=1)
        distances[rows] = np.take_along_axis(d, order, axis=1)
    return indices, distances
