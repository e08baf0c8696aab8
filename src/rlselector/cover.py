"""ε-sample cover (RL-Selector, Yang et al., ICCV 2025, Def. 1 and Eq. 6; ``docs/method.md`` §1).

Two samples of the same class cover each other when their features lie within ε (ℓ2). The degree of
cover of sample i in class k is

    C_i = (1 / (n_k − 1)) · Σ_{j≠i} 1(‖x̃_i − x̃_j‖ ≤ ε^k)  ∈ [0, 1],

high C meaning redundant (prune first). The set-aware variant counts only neighbours that are still
kept, ``C_i(s) = Σ_{j≠i} s_j · 1(D_ij ≤ ε^k) / (n_k − 1)``.

Distances are computed per class in row blocks and reduced into counts at once: memory is
O(block · n_k) with at most ``BLOCK_VALUES`` values per block, never an n_k × n_k matrix. Every
block works in float64 on class-centred features (centring keeps the expanded-norm formula
‖a‖² + ‖b‖² − 2a·b free of cancellation), and a pair counts as covered when
``D² ≤ ε² + TIE_RTOL · (‖a‖² + ‖b‖²)``: a pair at exactly ε is covered whatever rounding the block
shape produced, and the result does not depend on the block size. Features stay in their own dtype
(or a :class:`~rlselector.bank.FeatureBank`) until one class at a time is widened.

The exact passes cost O(n_k² · d) per class. Classes larger than ``approximate_above`` take an
approximate path instead (``backend="auto"`` or ``"faiss"``): ε from a seeded sample of pairs, and
the counts from a faiss IVF-Flat range search (float32, ``IVFSettings``), whose error against the
exact cover ``BENCHMARKS.md`` measures ("Cover at scale").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import torch

from .bank import FeatureBank
from .errors import InputError
from .train.distributed import DistributedContext

log = logging.getLogger(__name__)

EpsilonRule = Literal["mean", "quantile", "median", "nn-median"]
EPSILON_RULES: tuple[str, ...] = get_args(EpsilonRule)

Backend = Literal["auto", "exact", "faiss"]
BACKENDS: tuple[str, ...] = get_args(Backend)
"""``exact``: blockwise everywhere. ``faiss``: the approximate path above ``approximate_above`` (faiss
must be installed). ``auto``: as ``faiss`` where faiss is installed, else exact with a logged warning."""

APPROXIMATE_ABOVE = 50_000
"""Default class size above which ``auto``/``faiss`` approximate (``BENCHMARKS.md``, "Cover at scale"):
the faiss path at its calibrated recall (≥ 0.95) is 0.6× as fast as the exact blocks at 5,000
samples, 1.2× at 10,000, 1.6× at 20,000 and 2.2× at 50,000 (one thread). The exact cover is the
method's default (``docs/method.md`` §1) and every dataset this project reproduces (classes of
≤ 6,000; ImageNet's ≤ 1,300) stays below 50,000, where the exact ε + cover takes ~3 CPU minutes per
class and grows as n_k²; above it the approximate path is the one that still finishes."""

SAMPLE_PAIRS = 1_000_000
"""Pairs sampled for ε of an approximated class: the q-quantile's rank error is
√(q(1 − q)/pairs), ≈ 1 % of q at q = 0.01."""

MIN_PROBE = 8
CALIBRATION_QUERIES = 256
"""Calibrated IVF probing: nprobe starts at ``MIN_PROBE`` and grows by half until the range search finds
``IVFSettings.target_recall`` of the exact ε-neighbours of ``CALIBRATION_QUERIES`` seeded queries
(their exact counts cost 256 · n_k · d). How many cells an ε-ball spans depends on the data (its
intrinsic dimension, how ε compares with the cell size), so no fixed rule holds: nprobe =
max(8, ⌈4 · p̂ · nlist⌉) found 0.73 of the neighbours at 20,000 samples and 0.58 at 50,000 on
synthetic ReLU features, ≥ 0.9999 on another generator, and 1,000,000 of those features needed 140 of
1,000 lists for 0.95 (``BENCHMARKS.md``, "Cover at scale")."""

TRAIN_PER_LIST = 64
"""k-means training points per IVF list (faiss subsamples to this many, seeded)."""


@dataclass(frozen=True)
class IVFSettings:
    """How the faiss back end indexes one large class: IVF-Flat, L2, on float32 class-centred features."""

    nlist: int | None = None
    """Inverted lists (k-means cells); None: ⌈√(kept samples)⌉."""
    nprobe: int | None = None
    """Cells scanned per query; None: calibrated to ``target_recall`` (see ``CALIBRATION_QUERIES``)."""
    target_recall: float = 0.95
    """Share of the exact ε-neighbours the calibrated nprobe must find on the calibration queries."""
    gpu: int | None = None
    """GPU device of the coarse quantizer (``faiss.index_cpu_to_gpu``; needs a GPU build of faiss,
    untested here). The range scan stays on the CPU: faiss implements range search for CPU indexes only."""
    seed: int = 0
    """Seeds the k-means training sample, the pair sample and the calibration queries."""

    def __post_init__(self) -> None:
        if not 0.0 < self.target_recall <= 1.0:
            raise InputError(f"IVFSettings: target_recall must lie in (0, 1], got {self.target_recall}")
        for name in ("nlist", "nprobe"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"IVFSettings: {name} must be ≥ 1 or None, got {getattr(self, name)}")


DEFAULT_BLOCK_SIZE = 1024
"""Rows of a distance block (at most; see ``BLOCK_VALUES``); tiles of the ε pass are block × block."""

BLOCK_VALUES = 1 << 23
"""Cap on the float64 values of one block × n_k slab of the degree pass (64 MB): large classes get
fewer rows per block, so the peak memory stays O(n_k) with a small constant."""

TIE_RTOL = 1e-11
"""Relative slack (of the squared norms) under which a pair counts as lying exactly at ε.

Float64 rounding of the expanded formula stays below 5e-13 of the squared norms for d ≤ 4096 even in
the worst case, so the slack absorbs it; in distance terms it is ~3e-6 of the feature norm, finer than
the float32 precision the features come in.
"""


class Cover(NamedTuple):
    """Per-sample result of one cover pass, in the order of the input rows."""

    degree: torch.Tensor
    """C_i ∈ [0, 1], float64: share of the other samples of the class (kept ones, if set-aware) within ε."""
    nn_distance: torch.Tensor
    """float64 distance to the nearest other (kept) sample of the class; ``inf`` if there is none."""
    nn_index: torch.Tensor
    """int64 row of that nearest (kept) sample; −1 if there is none."""
    epsilon: torch.Tensor
    """float64 ε of each sample's class, so distances can be compared across classes in units of ε."""


def epsilon(
    features: torch.Tensor | np.ndarray | FeatureBank,
    labels: torch.Tensor | np.ndarray,
    *,
    rule: EpsilonRule = "quantile",
    quantile: float = 0.01,
    block_size: int = DEFAULT_BLOCK_SIZE,
    pivot_pairs: int = 20_000,
    seed: int = 0,
    backend: Backend = "auto",
    approximate_above: int = APPROXIMATE_ABOVE,
    sample_pairs: int = SAMPLE_PAIRS,
    ivf: IVFSettings = IVFSettings(),
) -> dict[int, float]:
    """Data-driven ε per class: ``{class id: ε}``.

    Rules (all exact):

    - ``"mean"``: mean intra-class pair distance (the paper's reading; measures centrality more than
      redundancy, see ``docs/agent-convergence.md``).
    - ``"quantile"``: the ``quantile``-quantile of intra-class pair distances (each unordered pair once,
      inverse-CDF definition: the smallest distance t with at least a share ``quantile`` of pairs ≤ t).
    - ``"median"``: ``"quantile"`` at 0.5.
    - ``"nn-median"``: median (inverse-CDF, i.e. the lower median) of each sample's nearest-neighbour
      distance within its class.

    The quantile is exact without holding all n_k²/2 distances: a seeded sample of ``pivot_pairs``
    pairs brackets it, one blockwise pass counts the pairs below the bracket and keeps only those inside
    it, and the order statistic is read off the kept ones (the bracket widens and the pass repeats in
    the rare case it missed). The sample only decides the memory used, never the answer.

    Classes larger than ``approximate_above`` (unless ``backend="exact"``) are estimated instead: the
    mean and the quantile from ``sample_pairs`` seeded random pairs, ``"nn-median"`` from the
    nearest neighbours the faiss back end finds (see :func:`cover`).
    """
    features, labels = _validated(features, labels)
    _check_backend(backend, approximate_above)
    if rule not in EPSILON_RULES:
        raise InputError(f"epsilon: unknown rule {rule!r}; use one of {', '.join(map(repr, EPSILON_RULES))}")
    if rule == "median":
        rule, quantile = "quantile", 0.5
    if not 0.0 < quantile <= 1.0:
        raise InputError(f"epsilon: quantile must lie in (0, 1], got {quantile}")
    _check_block_size(block_size)
    generator = torch.Generator().manual_seed(seed)
    result = {}
    for label, members in _classes(labels):
        if rule == "nn-median":
            everyone = torch.ones(len(members), dtype=torch.bool)
            _, nn_sq, _ = _neighbours(features, label, members, everyone, 0.0, backend, approximate_above, block_size, ivf)
            value = _inverse_cdf(nn_sq.sqrt(), 0.5)
        elif backend != "exact" and len(members) > approximate_above:
            squared = _sampled_squared_pair_distances(_class_rows(features, members, torch.float32), sample_pairs, generator)
            value = float(squared.sqrt().mean()) if rule == "mean" else math.sqrt(_inverse_cdf(squared, quantile))
        elif rule == "mean":
            value = _mean_pair_distance(_class_rows(features, members, torch.float64), block_size)
        else:
            value = _pair_distance_quantile(_class_rows(features, members, torch.float64), quantile, block_size, pivot_pairs, generator)
        result[label] = float(value)
    return result


def cover(
    features: torch.Tensor | np.ndarray | FeatureBank,
    labels: torch.Tensor | np.ndarray,
    eps: float | Mapping[int, float],
    *,
    kept: torch.Tensor | np.ndarray | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    backend: Backend = "auto",
    approximate_above: int = APPROXIMATE_ABOVE,
    ivf: IVFSettings = IVFSettings(),
    ranks: DistributedContext | None = None,
) -> Cover:
    """Degree of cover and nearest-neighbour distance of every sample, in one blockwise pass.

    ``eps`` is one ε for every class or ``{class id: ε}`` (as :func:`epsilon` returns). With ``kept``
    (a bool or 0/1 mask over the rows) only kept neighbours count, in both outputs; the normaliser
    stays n_k − 1 so set-aware degrees compare with plain ones.

    A class larger than ``approximate_above`` (``backend`` ``"auto"`` or ``"faiss"``) is counted by a
    faiss IVF-Flat range search over its kept samples instead: only the ``nprobe`` cells nearest a
    query are scanned, so counts can only fall short of the exact ones (up to float32 rounding at ε),
    and a sample with no neighbour within ε gets its nearest kept one from a 2-NN search of the
    same cells. Settings in ``ivf``.

    ``ranks``: under torchrun, the classes are split across the ranks (each counts its own) and the
    results summed back, so every rank returns the whole cover; every rank must pass the same inputs.
    """
    features, labels = _validated(features, labels)
    _check_block_size(block_size)
    _check_backend(backend, approximate_above)
    n = len(labels)
    if kept is None:
        kept_mask = torch.ones(n, dtype=torch.bool)
    else:
        kept_mask = torch.as_tensor(np.asarray(kept) if not torch.is_tensor(kept) else kept).cpu()
        if kept_mask.shape != (n,):
            raise InputError(f"cover: kept must be a mask of shape ({n},), got {tuple(kept_mask.shape)}")
        if kept_mask.dtype != torch.bool:
            if not bool(((kept_mask == 0) | (kept_mask == 1)).all()):
                raise InputError("cover: kept must hold only 0/1 (or bool) values")
            kept_mask = kept_mask != 0
    degree = torch.zeros(n, dtype=torch.float64)  # zeros: the rows of other ranks' classes add nothing to the sum
    nn_distance = torch.zeros(n, dtype=torch.float64)
    nn_index = torch.zeros(n, dtype=torch.long)
    sample_eps = torch.zeros(n, dtype=torch.float64)
    for label, members in _classes(labels, ranks):
        class_eps = _class_epsilon(eps, label)
        counts, nn_sq, nn_local = _neighbours(
            features, label, members, kept_mask[members], class_eps, backend, approximate_above, block_size, ivf
        )
        degree[members] = counts / (len(members) - 1)
        nn_distance[members] = nn_sq.sqrt()
        nn_index[members] = torch.where(nn_local >= 0, members[nn_local.clamp_min(0)], -1)
        sample_eps[members] = class_eps
    if ranks is not None:
        ranks.sum_(degree, nn_distance, nn_index, sample_eps)
    return Cover(degree=degree, nn_distance=nn_distance, nn_index=nn_index, epsilon=sample_eps)


def redundancy_rank(result: Cover) -> torch.Tensor:
    """Each sample's rank in [0, 1) from least to most redundant, without ties where the data allows.

    Orders by degree of cover, then, among equal degrees, by a closer nearest neighbour in units of
    the class's ε (a sample whose neighbour is closer is nearer to being covered, or more tightly
    covered; ε units keep tight classes from ranking as redundant for their scale alone). Degrees are
    counts, so ties are common (many samples have C = 0 at a small ε); the second key keeps a ratio
    threshold from falling inside a block of equal scores. Exact ties keep input order (stable sort).
    """
    n = result.degree.shape[0]
    by_closeness = torch.argsort(-_relative_nn_distance(result), stable=True)
    order = by_closeness[torch.argsort(result.degree[by_closeness], stable=True)]
    rank = torch.empty(n, dtype=torch.float64)
    rank[order] = torch.arange(n, dtype=torch.float64) / n
    return rank


def greedy_set_aware_prune(
    features: torch.Tensor | np.ndarray | FeatureBank,
    labels: torch.Tensor | np.ndarray,
    eps: float | Mapping[int, float],
    *,
    keep: int,
    round_size: int,
    seed: int = 0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    prune_first: torch.Tensor | np.ndarray | None = None,
    random_uncovered: bool = False,
) -> torch.Tensor:
    """Bool mask of ``keep`` samples: prune the most covered in rounds, re-counting among the kept.

    Each round computes the set-aware cover among still-kept samples and prunes up to ``round_size``
    of the most redundant kept ones (degree, then closer nearest kept neighbour, then a seeded random
    tie-break), passing over a sample whose nearest kept neighbour this round already pruned: it waits
    for the re-count. So of two samples that cover each other one goes and the other stays, and the
    kept set still covers what was pruned (Lemma 2). The cost is one cover pass over the kept samples
    per round.

    ``prune_first`` (one value per sample, lower pruned sooner, e.g. a policy's keep score) replaces
    degree and closeness as the order among the samples some kept neighbour still covers; samples no
    kept neighbour covers come after all of those, in the same order.

    ``random_uncovered`` prunes the samples no kept neighbour covers in the seeded random order
    instead: once the redundancy is gone, nothing says which of the rest is superfluous, and a random
    choice keeps the data's distribution where the closeness or score order would keep its outliers
    (``docs/rl-selector.md``, low ratios).
    """
    features, labels = _validated(features, labels)
    n = len(labels)
    if not 0 < keep <= n:
        raise InputError(f"greedy_set_aware_prune: keep must lie in [1, {n}], got {keep}")
    if round_size < 1:
        raise InputError(f"greedy_set_aware_prune: round_size must be ≥ 1, got {round_size}")
    if prune_first is not None:
        prune_first = torch.as_tensor(prune_first).detach().cpu().to(torch.float64)
        if prune_first.shape != (n,) or not bool(torch.isfinite(prune_first).all()):
            raise InputError(f"greedy_set_aware_prune: prune_first must hold {n} finite values, got shape {tuple(prune_first.shape)}")
    generator = torch.Generator().manual_seed(seed)
    tie_break = torch.randperm(n, generator=generator)
    kept = torch.ones(n, dtype=torch.bool)
    while int(kept.sum()) > keep:
        state = cover(features, labels, eps, kept=kept, block_size=block_size)
        candidates = kept.nonzero().squeeze(1)
        # Sort keys from least to most significant, each sort stable: random, then closeness, then degree.
        shuffled = candidates[torch.argsort(tie_break[candidates], stable=True)]
        order = shuffled
        if prune_first is None:
            order = order[torch.argsort(_relative_nn_distance(state)[order], stable=True)]
            order = order[torch.argsort(state.degree[order], stable=True, descending=True)]
        else:
            order = order[torch.argsort(prune_first[order], stable=True)]
            order = order[torch.argsort((state.degree[order] == 0).to(torch.int8), stable=True)]
        if random_uncovered:
            order = torch.cat([order[state.degree[order] > 0], shuffled[state.degree[shuffled] == 0]])
        budget = min(round_size, int(kept.sum()) - keep)
        pruned_now = torch.zeros(n, dtype=torch.bool)
        chosen = 0
        for candidate in order.tolist():
            neighbour = int(state.nn_index[candidate])
            if neighbour >= 0 and pruned_now[neighbour]:
                continue
            pruned_now[candidate] = True
            chosen += 1
            if chosen == budget:
                break
        kept &= ~pruned_now
    return kept


class Neighbours(NamedTuple):
    """The ``k`` nearest same-class samples of every sample, nearest first (−1 / inf where a class has
    fewer than k + 1 samples)."""

    index: torch.Tensor
    """(N, k) int64 rows of the neighbours."""
    distance: torch.Tensor
    """(N, k) float32 their distances."""


def nearest_neighbours(
    features: torch.Tensor | np.ndarray | FeatureBank, labels: torch.Tensor | np.ndarray, k: int, *, block_size: int = DEFAULT_BLOCK_SIZE,
    ranks: DistributedContext | None = None,
) -> Neighbours:
    """The ``k`` nearest other samples of the same class of every sample, exact, in row blocks (memory
    O(block · n_k) per class, never n_k × n_k): the candidate lists RL-Selector's agent reads the kept
    set around a sample from. ``ranks``: classes split across the ranks, as in :func:`cover`."""
    features, labels = _validated(features, labels)
    _check_block_size(block_size)
    if k < 1:
        raise InputError(f"nearest_neighbours: k must be ≥ 1, got {k}")
    n = len(labels)
    index = torch.zeros((n, k), dtype=torch.long)  # zeros: the rows of other ranks' classes add nothing to the sum
    distance = torch.zeros((n, k), dtype=torch.float32)
    for _, members in _classes(labels, ranks):
        index[members], distance[members] = -1, math.inf  # no neighbour found (yet)
        rows = _class_rows(features, members, torch.float64)
        left, right = _distance_factors(rows)
        found = min(k, len(members) - 1)
        step = min(block_size, max(1, BLOCK_VALUES // len(members)))
        for start in range(0, len(members), step):
            stop = min(len(members), start + step)
            squared = torch.matmul(left[start:stop], right.T)
            squared[torch.arange(stop - start, device=rows.device), torch.arange(start, stop, device=rows.device)] = math.inf  # not its own neighbour
            values, columns = squared.topk(found, dim=1, largest=False)
            index[members[start:stop], :found] = members[columns.cpu()]
            distance[members[start:stop], :found] = values.clamp_min_(0.0).sqrt_().float().cpu()
    if ranks is not None:
        ranks.sum_(index, distance)
    return Neighbours(index=index, distance=distance)


def _relative_nn_distance(result: Cover) -> torch.Tensor:
    scale = torch.where(result.epsilon > 0, result.epsilon, torch.ones_like(result.epsilon))
    return result.nn_distance / scale


# --- blockwise kernels -------------------------------------------------------------------------------


def _distance_factors(features: torch.Tensor, slack: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(left, right) with ``left[i] · right[j] = (1 − slack)·(‖x_i‖² + ‖x_j‖²) − 2 x_i·x_j``.

    One matrix product then yields a block of squared distances (less the tie slack) with no further
    elementwise pass: the norms ride along as two extra columns.
    """
    norms = (features * features).sum(1, keepdim=True)
    ones = torch.ones_like(norms)
    left = torch.cat([features, (1.0 - slack) * norms, ones], 1)
    right = torch.cat([-2.0 * features, ones, (1.0 - slack) * norms], 1)
    return left, right


def _count_within(
    features: torch.Tensor, kept: torch.Tensor, eps: float, block_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For every row: number of other kept rows within ``eps``, squared distance to the nearest kept
    row, and that row (−1 if none)."""
    n, device = features.shape[0], features.device
    left, right = _distance_factors(features, slack=TIE_RTOL)
    kept_rows = kept.to(device).nonzero().squeeze(1)
    right = right[kept_rows]  # only kept samples can cover: drop the others once, not per block
    column_of = torch.full((n,), -1, dtype=torch.long, device=device)
    column_of[kept_rows] = torch.arange(len(kept_rows), device=device)
    counts = torch.zeros(n, dtype=torch.float64, device=device)
    nearest = torch.full((n,), math.inf, dtype=torch.float64, device=device)
    nearest_row = torch.full((n,), -1, dtype=torch.long, device=device)
    if len(kept_rows) == 0:
        return counts.cpu(), nearest.cpu(), nearest_row.cpu()
    rows = min(block_size, max(1, BLOCK_VALUES // len(kept_rows)))
    slab, within = _Scratch(rows * len(kept_rows), torch.float64, device), _Scratch(rows * len(kept_rows), torch.bool, device)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        squared = torch.matmul(left[start:stop], right.T, out=slab.take(stop - start, len(kept_rows)))
        own = column_of[start:stop]
        is_kept = own >= 0
        squared[is_kept.nonzero().squeeze(1), own[is_kept]] = math.inf  # a sample does not cover itself
        counts[start:stop] = torch.le(squared, eps * eps, out=within.take(*squared.shape)).sum(1).to(torch.float64)
        values, columns = squared.min(1)
        nearest[start:stop] = values.clamp_min_(0.0)
        nearest_row[start:stop] = torch.where(torch.isfinite(values), kept_rows[columns], -1)
    return counts.cpu(), nearest.cpu(), nearest_row.cpu()  # one copy per class: the per-sample results live on the CPU


def _neighbours(
    features: torch.Tensor | FeatureBank, label: int, members: torch.Tensor, kept: torch.Tensor, eps: float,
    backend: Backend, approximate_above: int, block_size: int, ivf: IVFSettings,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_count_within`` for one class, by exact blocks or, for a class above the threshold, by faiss."""
    if backend != "exact" and len(members) > approximate_above:
        faiss = _faiss()
        if faiss is not None:
            return _ivf_count_within(faiss, _class_rows(features, members, torch.float32).cpu(), kept.cpu(), eps, ivf)
        log.warning(
            "cover: class %d has %d samples (> approximate_above=%d) but faiss is not installed: counting exactly, "
            "O(n_k² · d). pip install 'rlselector[faiss]' for the approximate back end.", label, len(members), approximate_above,
        )
    return _count_within(_class_rows(features, members, torch.float64), kept, eps, block_size)


def _ivf_count_within(
    faiss: Any, features: torch.Tensor, kept: torch.Tensor, eps: float, settings: IVFSettings
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``_count_within`` by an IVF-Flat index over the kept rows (float32 ``features``): a range search
    of each query's ``nprobe`` nearest cells, then a 2-NN search for the rows left without a neighbour."""
    n, d = features.shape
    kept_rows = kept.nonzero().squeeze(1)
    counts = torch.zeros(n, dtype=torch.float64)
    nearest = torch.full((n,), math.inf, dtype=torch.float64)
    nearest_row = torch.full((n,), -1, dtype=torch.long)
    if len(kept_rows) == 0:
        return counts, nearest, nearest_row
    index, share = _ivf_build(faiss, features if len(kept_rows) == n else features[kept_rows], eps, settings)
    column_of = torch.full((n,), -1, dtype=torch.long)
    column_of[kept_rows] = torch.arange(len(kept_rows))
    rows = max(1, min(n, int(BLOCK_VALUES / max(1.0, 2.0 * share * len(kept_rows)))))  # results per block ≈ BLOCK_VALUES
    for start in range(0, n, rows):
        block = slice(start, min(n, start + rows))
        counts[block], nearest[block], column = _ivf_range_block(index, features[block], column_of[block], eps)
        nearest_row[block] = torch.where(column >= 0, kept_rows[column.clamp_min(0)], -1)
    lonely = (nearest_row < 0).nonzero().squeeze(1)
    for chunk in lonely.split(max(1, BLOCK_VALUES // d)):
        found, ids = (torch.from_numpy(a) for a in index.search(features[chunk].numpy(), 2))
        usable = (ids >= 0) & (ids != column_of[chunk][:, None])
        pick = usable.to(torch.int8).argmax(1)  # the nearer usable of the two, if any
        ok = usable.any(1)
        nearest[chunk[ok]] = found[ok, pick[ok]].to(torch.float64)
        nearest_row[chunk[ok]] = kept_rows[ids[ok, pick[ok]]]
    return counts, nearest, nearest_row


def _ivf_build(faiss: Any, base: torch.Tensor, eps: float, settings: IVFSettings) -> tuple[Any, float]:
    """A trained IVF-Flat index holding ``base`` (float32), its nprobe set; and p̂, the share of
    sampled pairs of ``base`` within ``eps``."""
    d = base.shape[1]
    nlist = min(len(base), settings.nlist or math.ceil(math.sqrt(len(base))))
    quantizer = faiss.IndexFlatL2(d)
    if settings.gpu is not None:
        if not hasattr(faiss, "StandardGpuResources"):
            raise InputError("cover: IVFSettings.gpu needs a GPU build of faiss (faiss-gpu); this one is CPU-only. Leave gpu=None.")
        quantizer = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), settings.gpu, quantizer)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_L2)  # faiss's wrapper keeps the quantizer alive
    index.cp.seed = settings.seed
    index.cp.niter = 10
    index.cp.max_points_per_centroid = TRAIN_PER_LIST
    index.train(base.numpy())
    index.add(base.numpy())
    generator = torch.Generator().manual_seed(settings.seed)
    share = float((_sampled_squared_pair_distances(base, 100_000, generator) <= eps * eps).double().mean())
    index.nprobe = min(nlist, settings.nprobe or _calibrated_nprobe(index, base, eps, settings.target_recall, generator))
    return index, share


def _calibrated_nprobe(index: Any, base: torch.Tensor, eps: float, target: float, generator: torch.Generator) -> int:
    """The smallest of MIN_PROBE, ⌈1.5·MIN_PROBE⌉, … (or all lists) whose range search finds ``target``
    of the exact ε-neighbours of a seeded sample of indexed rows (steps of half: the scan's cost is
    proportional to nprobe, so doubling could overshoot by up to 2×)."""
    queries = torch.randperm(len(base), generator=generator)[:CALIBRATION_QUERIES]
    chosen = base[queries].to(torch.float64)
    exact = sum(
        (torch.cdist(chosen, part.to(torch.float64)) <= eps).sum(1) for part in base.split(max(1, BLOCK_VALUES // max(len(chosen), base.shape[1])))
    ) - 1  # each query finds itself
    nprobe = MIN_PROBE
    while nprobe < index.nlist and int(exact.sum()) > 0:
        index.nprobe = nprobe
        found, _, _ = _ivf_range_block(index, base[queries], queries, eps)
        if float(torch.minimum(found, exact.to(torch.float64)).sum()) >= target * int(exact.sum()):
            break
        nprobe = math.ceil(1.5 * nprobe)
    return min(nprobe, index.nlist)


def _ivf_range_block(
    index: Any, queries: torch.Tensor, own: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each query row: indexed rows within ``eps`` other than itself (``own``: its index position, or
    −1), squared distance to the nearest of them and its position (inf and −1 if none)."""
    radius = float(np.nextafter(np.float32(eps * eps), np.float32(math.inf)))  # faiss keeps D < radius: D = ε² counts
    lims, found, ids = index.range_search(queries.numpy(), radius)
    b = len(queries)
    lengths = torch.from_numpy(np.diff(lims).astype(np.int64))
    owner = torch.repeat_interleave(torch.arange(b), lengths)
    found, ids = torch.from_numpy(found), torch.from_numpy(ids)
    self_hit = ids == own[owner]
    found[self_hit] = math.inf  # a sample does not cover itself
    counts = (lengths - torch.bincount(owner[self_hit], minlength=b)).to(torch.float64)
    best = torch.full((b,), math.inf).scatter_reduce_(0, owner, found, "amin")
    hit = (found == best[owner]) & torch.isfinite(found)
    first = torch.full((b,), len(ids), dtype=torch.long).scatter_reduce_(0, owner[hit], hit.nonzero().squeeze(1), "amin")
    has = first < len(ids)
    column = torch.full((b,), -1, dtype=torch.long)
    column[has] = ids[first[has]]
    return counts, best.to(torch.float64), column


def _sampled_squared_pair_distances(features: torch.Tensor, pairs: int, generator: torch.Generator) -> torch.Tensor:
    """Squared distances of ``pairs`` seeded random pairs of distinct rows, computed in chunks in the
    features' dtype (float32 halves the time of an estimate) and returned as float64."""
    n, d = features.shape
    first = torch.randint(0, n, (pairs,), generator=generator)
    second = (first + torch.randint(1, n, (pairs,), generator=generator)) % n
    chunk = max(1, (1 << 19) // d)  # small pieces reuse the heap; big ones are faulted in afresh each time (2× slower)
    return torch.cat([
        (features[a] - features[b]).pow_(2).sum(1) for a, b in zip(first.split(chunk), second.split(chunk), strict=True)
    ]).to(torch.float64)


def _upper_squared_distances(features: torch.Tensor, block_size: int) -> Iterator[torch.Tensor]:
    """Squared distances of every unordered pair (i < j), tile by tile (NaN marks the pairs a diagonal
    tile holds twice or with itself; every comparison with NaN is false)."""
    n = features.shape[0]
    left, right = _distance_factors(features)
    side = min(block_size, n)
    buffer = _Scratch(side * side, torch.float64, features.device)
    lower = torch.ones(side, side, dtype=torch.bool, device=features.device).tril_()
    for row in range(0, n, block_size):
        for column in range(row, n, block_size):
            rows, columns = left[row : row + block_size], right[column : column + block_size]
            tile = torch.matmul(rows, columns.T, out=buffer.take(len(rows), len(columns))).clamp_min_(0.0)
            if column == row:
                tile.masked_fill_(lower[: len(rows), : len(columns)], math.nan)
            yield tile  # valid until the next tile: the buffer is reused


class _Store:
    """A float64 vector filled piece by piece into one buffer that doubles when full."""

    def __init__(self, capacity: int, device: torch.device) -> None:
        self.buffer = torch.empty(max(1, capacity), dtype=torch.float64, device=device)
        self.size = 0

    def append(self, piece: torch.Tensor) -> None:
        end = self.size + piece.numel()
        if end > self.buffer.numel():
            grown = torch.empty(max(end, 2 * self.buffer.numel()), dtype=torch.float64, device=self.buffer.device)
            grown[: self.size] = self.buffer[: self.size]
            self.buffer = grown
        self.buffer[self.size : end] = piece
        self.size = end

    def values(self) -> torch.Tensor:
        return self.buffer[: self.size]


class _Scratch:
    """One flat buffer handed out as contiguous (rows × columns) views: block after block reuses the
    same memory instead of allocating anew, which otherwise fragments the heap and lets the resident
    size grow far beyond one block."""

    def __init__(self, size: int, dtype: torch.dtype, device: torch.device) -> None:
        self.flat = torch.empty(size, dtype=dtype, device=device)

    def take(self, rows: int, columns: int) -> torch.Tensor:
        return self.flat[: rows * columns].view(rows, columns)


def _mean_pair_distance(features: torch.Tensor, block_size: int) -> float:
    n = features.shape[0]
    total = sum(float(torch.nansum(tile.sqrt_())) for tile in _upper_squared_distances(features, block_size))
    return total / (n * (n - 1) / 2)


def _pair_distance_quantile(
    features: torch.Tensor, q: float, block_size: int, pivot_pairs: int, generator: torch.Generator
) -> float:
    n = features.shape[0]
    pairs = n * (n - 1) // 2
    rank = _inverse_cdf_rank(q, pairs)  # 1-based rank of the wanted order statistic
    pivot = None
    if pairs > 4 * pivot_pairs:  # below that, keeping every distance costs no more than the sample
        # float32 is enough for a bracket (the count below decides exactness) and halves its gathers,
        # two thirds of ε's time on classes of ImageNet's size.
        pivot = _sampled_squared_pair_distances(features.to(torch.float32), pivot_pairs, generator).sort().values
    margin = 6.0 * math.sqrt(q * (1.0 - q) / pivot_pairs) + 2.0 / pivot_pairs
    side = min(block_size, n)
    mask, upper = _Scratch(side * side, torch.bool, features.device), _Scratch(side * side, torch.bool, features.device)
    while True:
        low, high = -math.inf, math.inf  # squared distances
        if pivot is not None:
            if q - margin > 0:
                low = float(pivot[int((q - margin) * pivot_pairs)])
            if q + margin < 1:
                high = float(pivot[min(pivot_pairs - 1, math.ceil((q + margin) * pivot_pairs))])
        below = 0
        # The bracket's pairs go into one preallocated store (sized from the sample, grown if needed):
        # thousands of small per-tile pieces would fragment the heap.
        share = 1.0 if pivot is None else min(1.0, 3.0 * margin)
        window = _Store(int(share * pairs) + side * side, features.device)
        for tile in _upper_squared_distances(features, block_size):
            below += int(torch.lt(tile, low, out=mask.take(*tile.shape)).sum())
            inside = torch.ge(tile, low, out=mask.take(*tile.shape)).logical_and_(torch.le(tile, high, out=upper.take(*tile.shape)))
            window.append(tile[inside])
        inside = window.values()
        if below < rank <= below + inside.numel():
            return math.sqrt(float(torch.kthvalue(inside, rank - below).values))
        margin *= 4.0  # the sample missed the quantile (rare): widen the bracket and count again


def _inverse_cdf_rank(q: float, count: int) -> int:
    # The small slack keeps q·count = 3.0000000000000004 from rounding up to rank 4.
    return min(count, max(1, math.ceil(q * count - 1e-9)))


def _inverse_cdf(values: torch.Tensor, q: float) -> float:
    return float(torch.kthvalue(values, _inverse_cdf_rank(q, values.numel())).values)


# --- input handling ----------------------------------------------------------------------------------


def _validated(features, labels) -> tuple[torch.Tensor | FeatureBank, torch.Tensor]:
    """Checked inputs; features keep their dtype (integers become float64) and their device, or stay
    a bank (its rows are finite by construction), so nothing of size N × d is copied here."""
    if not isinstance(features, FeatureBank):
        features = torch.as_tensor(features).detach()
        if not features.dtype.is_floating_point:
            features = features.to(torch.float64)
    labels = torch.as_tensor(labels).detach().cpu()
    shape = (features.n, features.dim) if isinstance(features, FeatureBank) else tuple(features.shape)
    if len(shape) != 2:
        raise InputError(f"cover: features must be 2-D (samples × dims), got shape {shape}")
    if labels.shape != (shape[0],):
        raise InputError(
            f"cover: labels must be 1-D with one entry per feature row ({shape[0]}), "
            f"got shape {tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise InputError(f"cover: labels must be integer class ids, got dtype {labels.dtype}")
    if torch.is_tensor(features):
        bad = sum(int((~torch.isfinite(rows)).any(1).sum()) for rows in features.split(max(1, BLOCK_VALUES // max(1, shape[1]))))
        if bad:
            raise InputError(f"cover: {bad} feature rows hold NaN or inf; check the network's features (diverged training?)")
    classes, counts = labels.unique(return_counts=True)
    if bool((counts < 2).any()):
        small = classes[counts < 2].tolist()
        raise InputError(
            f"cover: classes {small} have fewer than 2 samples; the degree of cover needs at least 2 per class "
            "(drop those samples or merge the classes)"
        )
    return features, labels.long()


def _classes(labels: torch.Tensor, ranks: DistributedContext | None = None) -> Iterator[tuple[int, torch.Tensor]]:
    """Each class id with its rows in ascending order (one stable sort, not one pass per class);
    with ``ranks``, only the classes this rank owns."""
    classes, counts = labels.unique(return_counts=True)
    order = torch.argsort(labels, stable=True)
    for position, (label, members) in enumerate(zip(classes.tolist(), order.split(counts.tolist()), strict=True)):
        if ranks is None or ranks.owns(position):
            yield int(label), members


def _class_rows(features: torch.Tensor | FeatureBank, members: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """One class's rows, centred on the class mean (summed in float64), as a new ``dtype`` tensor."""
    rows = (features.rows(members) if isinstance(features, FeatureBank) else features[members]).to(dtype)
    chunk = max(1, BLOCK_VALUES // rows.shape[1])
    mean = sum(part.to(torch.float64).sum(0) for part in rows.split(chunk)) / len(rows)
    return rows.sub_(mean.to(dtype))


def _faiss() -> Any:
    """The faiss module, or None when the optional dependency is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _check_backend(backend: str, approximate_above: int) -> None:
    if backend not in BACKENDS:
        raise InputError(f"cover: unknown backend {backend!r}; use one of {', '.join(map(repr, BACKENDS))}")
    if approximate_above < 1:
        raise InputError(f"cover: approximate_above must be ≥ 1, got {approximate_above}")
    if backend == "faiss" and _faiss() is None:
        raise InputError("cover: backend='faiss' needs faiss, which is not installed: pip install 'rlselector[faiss]' (or use backend='auto')")


def _class_epsilon(eps: float | Mapping[int, float], label: int) -> float:
    if isinstance(eps, Mapping):
        if label not in eps:
            raise InputError(f"cover: eps has no entry for class {label}; pass one ε per class (see epsilon())")
        value = float(eps[label])
    else:
        value = float(eps)
    if not (math.isfinite(value) and value >= 0):
        raise InputError(f"cover: ε must be finite and ≥ 0, got {value} for class {label}")
    return value


def _check_block_size(block_size: int) -> None:
    if block_size < 1:
        raise InputError(f"cover: block_size must be ≥ 1, got {block_size}")
