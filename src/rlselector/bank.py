"""Feature bank: the latest penultimate features of every sample, kept compact for the ε-sample cover.

RL-Selector recomputes ε and the cover every epoch from every sample's latest features
(``docs/method.md`` §1). At ImageNet scale a float32 bank is 1.28 M × 2048 × 4 B = 10.5 GB, so the
bank stores its rows in float16 by default (half the bytes) and can project them to fewer dimensions
with a seeded Gaussian (Johnson–Lindenstrauss) matrix on the way in. Reads always come back as
float32, which the cover then centres and widens per class.

The default is float16, no projection, chosen by the agreement with the exact float32 cover
measured in ``BENCHMARKS.md`` ("Cover at scale", the bank): float16 reproduces the degree ranking
and the ε-neighbour sets almost exactly (Spearman ≥ 0.9998, recall ≥ 0.9988 at d = 512 and 2048, on
synthetic ReLU features with 20 % near-duplicates and on digits through a random ReLU layer), while a
projection to 256 or 128 dimensions loses far more (Spearman 0.89–0.94, recall 0.68–0.86): use one
only where float16 still does not fit.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from .errors import InputError

BankDtype = Literal["float32", "float16"]
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16}


class FeatureBank:
    """An (n, dim) store of feature rows, written by sample index and read as float32.

    ``dim`` is ``d``, or ``projection_dim`` when a projection is set: rows are then multiplied by a
    (d, projection_dim) matrix of N(0, 1/projection_dim) entries drawn from ``seed``, which keeps
    squared distances unbiased (E‖xR‖² = ‖x‖²). Rows never written read as zeros.
    """

    def __init__(self, n: int, d: int, *, dtype: BankDtype = "float16", projection_dim: int | None = None, seed: int = 0) -> None:
        if n < 1 or d < 1:
            raise InputError(f"FeatureBank: n and d must be ≥ 1, got n={n}, d={d}")
        if dtype not in _DTYPES:
            raise InputError(f"FeatureBank: dtype must be one of {', '.join(map(repr, _DTYPES))}, got {dtype!r}")
        if projection_dim is not None and not 1 <= projection_dim < d:
            raise InputError(f"FeatureBank: projection_dim must lie in [1, {d - 1}] (fewer than d = {d} dimensions), got {projection_dim}")
        self.d = d
        self.projection: torch.Tensor | None = None
        if projection_dim is not None:
            generator = torch.Generator().manual_seed(seed)
            self.projection = torch.randn(d, projection_dim, generator=generator) / math.sqrt(projection_dim)
        self.stored = torch.zeros(n, self.dim, dtype=_DTYPES[dtype])

    @property
    def n(self) -> int:
        return self.stored.shape[0]

    @property
    def dim(self) -> int:
        """Width of the stored rows: ``projection_dim`` if projected, else ``d``."""
        return self.d if self.projection is None else self.projection.shape[1]

    @property
    def nbytes(self) -> int:
        """Bytes held: the rows plus the projection matrix."""
        matrix = 0 if self.projection is None else self.projection.numel() * self.projection.element_size()
        return self.stored.numel() * self.stored.element_size() + matrix

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(b, d) features as the bank sees them: float32 on the CPU, projected if the bank projects.

        Anything compared with the bank's rows (e.g. an agent's states) must pass through this first.
        """
        features = torch.as_tensor(features).detach().to("cpu", torch.float32)
        if features.ndim != 2 or features.shape[1] != self.d:
            raise InputError(f"FeatureBank: features must have shape (rows, {self.d}), got {tuple(features.shape)}")
        return features if self.projection is None else features @ self.projection

    def update(self, indices: torch.Tensor, features: torch.Tensor) -> None:
        """Store ``features[i]`` (projected if set, then cast to the bank's dtype) as row ``indices[i]``."""
        indices = torch.as_tensor(indices).detach().cpu().long()
        rows = self.project(features)
        if indices.shape != (rows.shape[0],):
            raise InputError(f"FeatureBank.update: {rows.shape[0]} feature rows need {rows.shape[0]} indices, got shape {tuple(indices.shape)}")
        if len(indices) and not (0 <= int(indices.min()) and int(indices.max()) < self.n):
            raise InputError(f"FeatureBank.update: indices must lie in [0, {self.n}), got {int(indices.min())}..{int(indices.max())}")
        cast = rows.to(self.stored.dtype)
        if not bool(torch.isfinite(cast).all()):
            overflow = " or exceed float16's range (±65504): use dtype='float32'" if self.stored.dtype == torch.float16 else ""
            raise InputError(f"FeatureBank.update: features hold NaN or inf{overflow}; check the network's features (diverged training?)")
        self.stored[indices] = cast

    def rows(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The rows at ``index`` (indices, a mask or a slice: blockwise access) as a new float32 tensor."""
        return self.stored[index].to(torch.float32, copy=True)

    def all(self) -> torch.Tensor:
        """Every row as one float32 (n, dim) tensor: n · dim · 4 bytes. Prefer :meth:`rows` by block at scale."""
        return self.rows(slice(None))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only (``torch.load(weights_only=True)`` reads it): the rows and, if set, the projection."""
        state = {"rows": self.stored.clone()}
        if self.projection is not None:
            state["projection"] = self.projection.clone()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore rows (and projection) saved by a bank of the same n, d, dtype and projection_dim."""
        expected = self.state_dict()
        if set(state) != set(expected):
            raise InputError(f"FeatureBank.load_state_dict: expected keys {sorted(expected)}, got {sorted(state)} (a bank built with other settings?)")
        for key, value in state.items():
            if not torch.is_tensor(value) or value.shape != expected[key].shape or value.dtype != expected[key].dtype:
                got = f"{tuple(value.shape)} {value.dtype}" if torch.is_tensor(value) else type(value).__name__
                raise InputError(
                    f"FeatureBank.load_state_dict: {key!r} must be {tuple(expected[key].shape)} {expected[key].dtype}, got {got}"
                )
        self.stored.copy_(state["rows"])
        if self.projection is not None:
            self.projection.copy_(state["projection"])
