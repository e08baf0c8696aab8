"""Herding: per class, greedily add the sample that moves the subset mean closest to the class mean.

Welling, "Herding Dynamical Weights to Learn", ICML 2009; used for coreset selection by Chen,
Welling & Smola, "Super-Samples from Kernel Herding", UAI 2010, and DeepCore (Guo, Zhao & Bai,
DEXA 2022, ``herding.py``).

With the class mean μ and the running sum S of the t samples already chosen, step t adds

    argmin_x ‖(t + 1)·μ − (S + x)‖²      (the subset mean after adding x is closest to μ).

On class-centred features (μ = 0) this is ``argmin_x 2·S·x + ‖x‖²``: one matrix-vector product per
step, O(n·d) time and O(n) memory, never an n × n matrix. Ties go to the lower index. DeepCore's
``herding.py`` computes the distance of every remaining x to ``(t + 1)·μ − S`` and takes the
*argmax*, the sample farthest from that target, which pushes the subset mean away from μ: a slip
against the herding rule (Welling; Chen, Welling & Smola), so its selections differ from these.
DeepCore also herds over the whole set by default (``balance=False``); here ``per_class`` is on.

The keep priority is the reverse selection order: the first pick of a class has the highest priority;
with several classes, priorities are interleaved by the share of the class quota already used, so a
smaller budget would keep roughly the same class proportions. Unselected samples get priority 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection.distances import centred, sq_norms
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..progress import step_progress

PROGRESS_EVERY = 256
"""Greedy steps between progress-bar updates."""


def herding_order(features: np.ndarray, budget: int, *, advance=None) -> np.ndarray:
    """The first ``budget`` herding picks (indices into ``features``) towards the mean of ``features``."""
    n = features.shape[0]
    if not 0 <= budget <= n:
        raise ValueError(f"budget must lie in [0, {n}], got {budget}")
    x = centred(np.asarray(features, dtype=np.float32))
    norms = sq_norms(x)
    cost = norms.copy()  # 2·S·x + ‖x‖² with S = 0
    chosen = np.zeros(n, dtype=bool)
    total = np.zeros(x.shape[1], dtype=np.float64)
    order = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        cost[chosen] = np.inf
        pick = int(np.argmin(cost))
        order[t] = pick
        chosen[pick] = True
        total += x[pick]
        cost = (x @ total.astype(np.float32)).astype(np.float64, copy=False)
        cost *= 2.0
        cost += norms
        if advance is not None and (t + 1) % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    if advance is not None:
        advance(budget % PROGRESS_EVERY)
    return order


@register_method
class Herding(SelectionMethod):
    name = "herding"
    summary = "per class, greedily add the sample that moves the subset mean closest to the class mean"
    inputs = ("features",)
    reference = "Welling, Herding Dynamical Weights to Learn, ICML 2009 (DeepCore herding)"

    @dataclass
    class Params:
        per_class: bool = param(True, "herd towards each class mean with proportional class quotas (DeepCore's balance option); False = one herd towards the global mean (per class anyway under --class-balanced)")

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_embeddings(self.name)

    def run(self, ctx: SelectionContext) -> MethodResult:
        features = np.asarray(ctx.embeddings(), dtype=np.float32)
        n = features.shape[0]
        groups = ctx.budget_groups(per_class=self.params.per_class or ctx.class_balanced)
        priority = np.zeros(n, dtype=np.float64)
        kept = []
        with step_progress("herding", ctx.budget, enabled=ctx.progress) as advance:
            for members, quota in groups:
                if quota == 0:
                    continue
                local = features if len(members) == n else features[members]  # no copy for one global herd
                order = members[herding_order(local, quota, advance=advance)]
                priority[order] = 1.0 + (quota - np.arange(quota)) / quota
                kept.append(order)
        indices = np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)
        return MethodResult(
            scores=priority,
            indices=indices,
            info={"herding_per_class": bool(self.params.per_class or ctx.class_balanced)},
        )
