"""k-Center greedy: farthest-first traversal of the feature space.

Sener & Savarese, "Active Learning for Convolutional Neural Networks: A Core-Set Approach", ICLR 2018
(arXiv:1708.00489), Algorithm 1; the coreset baseline of DeepCore (``k_center_greedy.py``).

Start from one seeded random centre; repeatedly add the sample farthest from its nearest centre.
The state is a running min-distance vector of length N, updated with one distance row per new centre
(``selection.distances.sq_distances_to``): O(N·d) time per step and O(N) memory. DeepCore keeps a
budget × N distance matrix instead (≈5 GB at CIFAR-10, 50 %); the picks are the same.

Globally by default; per class with proportional quotas (and one seeded start per class) under
``--class-balanced``. The keep priority is the reverse selection order (the first centre highest);
samples never picked rank below every centre, farther from the centres first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection.distances import centred, sq_distances_to, sq_norms
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..progress import step_progress

PROGRESS_EVERY = 256
STARTS = ("random", "central")


def kcenter_order(features: np.ndarray, budget: int, first: int, *, advance=None) -> tuple[np.ndarray, np.ndarray]:
    """k-center greedy from centre ``first``: ``(the budget picks in order, final squared distance of
    every row to its nearest pick)``. Ties go to the lower index."""
    n = features.shape[0]
    if not 1 <= budget <= n:
        raise ValueError(f"budget must lie in [1, {n}], got {budget}")
    x = centred(np.asarray(features, dtype=np.float32))
    norms = sq_norms(x)
    nearest = np.full(n, np.inf)
    order = np.empty(budget, dtype=np.int64)
    pick = int(first)
    for t in range(budget):
        order[t] = pick
        np.minimum(nearest, sq_distances_to(x, x[pick], x_sq=norms), out=nearest)
        nearest[pick] = -1.0  # centres stay at -1 (min keeps it) and are never picked again, even among duplicates
        pick = int(np.argmax(nearest))
        if advance is not None and (t + 1) % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    if advance is not None:
        advance(budget % PROGRESS_EVERY)
    nearest[order] = 0.0
    return order, nearest


def central_index(features: np.ndarray) -> int:
    """The sample closest to the mean (a deterministic start)."""
    x = centred(np.asarray(features, dtype=np.float32))
    return int(np.argmin(sq_norms(x)))


@register_method
class KCenterGreedy(SelectionMethod):
    name = "kcenter"
    summary = "k-center greedy (farthest-first) on features, O(N) memory"
    inputs = ("features",)
    reference = "Sener & Savarese, Active Learning for CNNs: A Core-Set Approach, ICLR 2018"

    @dataclass
    class Params:
        start: str = param("random", "first centre: 'random' (seeded, as the paper) or 'central' (the sample closest to the mean)", choices=STARTS)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_embeddings(self.name)

    def run(self, ctx: SelectionContext) -> MethodResult:
        features = np.asarray(ctx.embeddings(), dtype=np.float32)
        n = features.shape[0]
        groups = ctx.budget_groups(per_class=ctx.class_balanced)
        rng = ctx.rng("kcenter")
        priority = np.zeros(n, dtype=np.float64)
        kept = []
        with step_progress("k-center", ctx.budget, enabled=ctx.progress) as advance:
            for members, quota in groups:
                if quota == 0:
                    priority[members] = 0.0
                    continue
                local = features if len(members) == n else features[members]  # no copy when global
                first = int(rng.integers(len(members))) if self.params.start == "random" else central_index(local)
                order, nearest = kcenter_order(local, quota, first, advance=advance)
                # never-picked samples: in [0, 1), farther from the centres first
                ranks = np.empty(len(members))
                ranks[np.argsort(nearest, kind="stable")] = np.arange(len(members))
                priority[members] = ranks / len(members)
                priority[members[order]] = 1.0 + (quota - np.arange(quota)) / quota
                kept.append(members[order])
        indices = np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)
        return MethodResult(scores=priority, indices=indices, info={"kcenter_start": self.params.start})
