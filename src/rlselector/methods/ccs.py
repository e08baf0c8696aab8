"""CCS: drop the hardest β share as likely mislabeled, then sample evenly across difficulty strata.

Zheng, Liu, Li, Prakash, "Coverage-centric Coreset Selection for High Pruning Rates", ICLR 2023
(arXiv:2210.15809). Two steps:

1. **Mislabel mask.** Rank samples by an importance (difficulty) score and remove the hardest
   ``β·N`` (the paper's "hard cutoff"): at high pruning rates these are mostly mislabeled or
   ambiguous samples the small coreset cannot afford.
2. **Stratified sampling.** Split the remaining score range into 50 equal-width strata and fill
   the budget from the sparsest stratum up, each remaining stratum getting an equal share (the
   project's ``stratified`` policy, which implements exactly this allocation).

The score (``score``): ``aum`` (area under the margin of Pleiss et al., the paper's main choice;
difficulty = −AUM over the proxy's training epochs), ``forgetting`` (forgetting events,
never-learned = E) or ``el2n`` (at the proxy's early epoch). The same score drives the mask and the
strata.

β (``beta``): None applies the paper's CIFAR-10 settings by pruning rate ``1 − ratio``: 0 up to
50 % pruned, 0.1 up to 80 %, 0.3 beyond (the official README uses 0.3 at 90 %). β is capped so
that at least the budget survives the mask. With ``--class-balanced`` the mask and the sampling
are done per class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import scores
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.policies import apply_policy, class_quotas
from ..selection.dynamics import ProxyRecord

SCORES = ("aum", "forgetting", "el2n")


def default_beta(ratio: float) -> float:
    """The paper's hard-cutoff rate for a kept share ``ratio`` (CIFAR-10 settings)."""
    pruned = 1.0 - ratio
    if pruned <= 0.5 + 1e-9:
        return 0.0
    if pruned <= 0.8 + 1e-9:
        return 0.1
    return 0.3


def difficulty(record: ProxyRecord, labels: np.ndarray, score: str) -> np.ndarray:
    """Higher = harder: −AUM, forgetting events, or EL2N at the early epoch."""
    if score == "aum":
        return -record.area_under_margin()
    if score == "forgetting":
        return scores.forgetting_events(record.correct)
    return scores.el2n(record.logits_at(record.early_epoch), labels)


def ccs_select(
    hardness: np.ndarray,
    k: int,
    beta: float,
    rng: np.random.Generator,
    *,
    labels: np.ndarray | None = None,
    num_classes: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask the hardest ``β`` share (per class when ``labels``), stratified-sample ``k`` of the rest.

    Returns ``(kept, priority, masked)``: kept indices, a keep priority whose top-k is ``kept``
    (masked samples lowest) and the masked indices.
    """
    hardness = np.asarray(hardness, dtype=np.float64)
    n = len(hardness)
    if labels is None:
        groups, quotas = [np.arange(n)], [k]
    else:
        groups = [np.flatnonzero(labels == c) for c in range(num_classes)]
        quotas = list(class_quotas(labels, k, num_classes))
    masked = []
    for members, quota in zip(groups, quotas):
        drop = min(int(round(beta * len(members))), len(members) - int(quota))
        if drop > 0:
            hardest_first = members[np.argsort(-hardness[members], kind="stable")]
            masked.append(hardest_first[:drop])
    masked = np.sort(np.concatenate(masked)) if masked else np.empty(0, dtype=np.int64)
    remaining = np.setdiff1d(np.arange(n), masked)
    local_kept, local_priority = apply_policy(
        "stratified", hardness[remaining], k, rng,
        labels=None if labels is None else labels[remaining], num_classes=num_classes,
    )
    priority = np.full(n, -1.0)
    priority[remaining] = local_priority
    return remaining[local_kept], priority, masked


@register_method
class CCS(SelectionMethod):
    name = "ccs"
    summary = "coverage-centric: drop the hardest β (mislabel mask), stratified sampling over score strata"
    inputs = ("proxy",)
    reference = "Zheng et al., Coverage-centric Coreset Selection for High Pruning Rates, ICLR 2023"

    @dataclass
    class Params:
        score: str = param("aum", "difficulty score for mask and strata: aum (paper), forgetting or el2n", choices=SCORES)
        beta: float | None = param(None, "share of the hardest samples masked out; None = the paper's setting for the pruning rate", ge=0, lt=1)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(
            self.name,
            logits=[None] if self.params.score == "el2n" else [],
            margin=self.params.score == "aum",
            min_epochs=2 if self.params.score == "forgetting" else 1,
        )

    def run(self, ctx: SelectionContext) -> MethodResult:
        hardness = difficulty(ctx.proxy(), ctx.labels, self.params.score)
        beta = default_beta(ctx.ratio) if self.params.beta is None else self.params.beta
        kept, priority, masked = ccs_select(
            hardness, ctx.budget, beta, ctx.rng("ccs"),
            labels=ctx.labels if ctx.class_balanced else None, num_classes=ctx.dataset.num_classes,
        )
        return MethodResult(
            scores=priority,
            indices=kept,
            raw_scores=hardness,
            info={
                "raw_score": f"difficulty by {self.params.score} (higher = harder)",
                "beta": beta,
                "masked": int(len(masked)),
                "strata": 50,
            },
        )
