"""The blocked distance helper, and proof that k-center and herding never hold a quadratic matrix."""

import tracemalloc

import numpy as np
import pytest

from rlselector.methods.herding import herding_order
from rlselector.methods.kcenter import kcenter_order
from rlselector.selection.distances import (
    MAX_BLOCK_ELEMENTS, block_rows, blocked_sq_distances, knn, row_blocks, sq_distances, sq_distances_to,
)


@pytest.mark.parametrize("n", [1, 7, 1000, 60_000, 200_000])
def test_block_arithmetic_bounds_every_block(n):
    rows = block_rows(n)
    assert rows >= 1
    assert rows * n <= max(MAX_BLOCK_ELEMENTS, n)  # one block never holds more than the cap (or one row)
    spans = list(row_blocks(n, rows))
    assert spans[0].start == 0 and spans[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(spans, spans[1:]))
    assert all(s.stop - s.start <= rows for s in spans)
    # at 60,000 samples a block is 69 rows: 4.1 M distances (33 MB float64), not 3.6 G (28.8 GB)
    if n == 60_000:
        assert rows == 69


def test_blocked_distances_match_brute_force_and_respect_the_cap():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((103, 5))
    y = rng.standard_normal((37, 5))
    brute = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    seen = 0
    for rows, block in blocked_sq_distances(x, y, max_elements=400):
        assert block.shape == (rows.stop - rows.start, 37) and block.size <= 400
        np.testing.assert_allclose(block, brute[rows], atol=1e-12)
        seen += block.shape[0]
    assert seen == 103
    np.testing.assert_allclose(sq_distances(x[:3], y), brute[:3], atol=1e-12)
    np.testing.assert_allclose(sq_distances_to(x, y[4]), brute[:, 4], atol=1e-12)


def test_knn_exact_with_ties_to_the_lower_index():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((60, 3))
    brute = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(brute, np.inf)
    idx, d = knn(x, 4, max_elements=200)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(d, np.sort(brute, axis=1)[:, :4], atol=1e-12)
    # 1 lies at distance 1 from both 0 and 2: the lower index wins
    idx, _ = knn(np.array([[0.0], [1.0], [2.0], [3.0]]), 1)
    np.testing.assert_array_equal(idx.ravel(), [1, 0, 1, 2])


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("order", [lambda x: kcenter_order(x, len(x) // 2, first=0), lambda x: herding_order(x, len(x) // 2)], ids=["kcenter", "herding"])
def test_memory_grows_linearly_not_quadratically(order):
    rng = np.random.default_rng(0)
    small, large = (rng.standard_normal((n, 8)).astype(np.float32) for n in (2000, 8000))
    peak_small, peak_large = _peak_bytes(lambda: order(small)), _peak_bytes(lambda: order(large))
    # 4× the rows: linear memory grows ~4×, quadratic 16×; a budget × N float64 matrix (DeepCore's
    # k-center) would need 8000 · 4000 · 8 = 256 MB; allow 200 bytes per row (the input itself is 32)
    assert peak_large < 200 * 8000, peak_large
    assert peak_large < 6 * peak_small, (peak_small, peak_large)
