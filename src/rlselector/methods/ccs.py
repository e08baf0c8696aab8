"""CCS: drop the lowest-AUM β share as likely mislabeled, then sample evenly across score strata.

Zheng, Liu, Li, Prakash, "Coverage-centric Coreset Selection for High Pruning Rates", ICLR 2023
(arXiv:2210.15809); released code github.com/haizhongzheng/Coverage-centric-coreset-selection
(``train.py`` coreset-mode ``stratified``, ``core/data/Coreset.py``, ``generate_importance_score.py``).
Two steps:

1. **Mislabel mask** (``mislabel_mask``). Remove the ``int(β·N)`` samples of lowest AUM, whatever
   score drives the strata: at high pruning rates these are mostly mislabeled or ambiguous samples
   the small coreset cannot afford. AUM is the authors' ``accumulated_margin``, the sum over the
   training epochs of the probability margin ``p_y − max_{k≠y} p_k`` of the training forward
   (:func:`~rlselector.selection.scores.accumulated_margin`).
2. **Stratified sampling** (``stratified_sampling``). Split the remaining score range into 50
   equal-width strata and fill the budget from the sparsest stratum up, each remaining stratum
   getting an equal share, sampled uniformly (the project's ``stratified`` policy).

The strata score (``score``): ``aum`` (the paper's main choice), ``forgetting`` (forgetting events,
never-learned 0 as the released scores) or ``el2n`` (at the proxy's early epoch), each binned as
released, from its lowest value up (the rounding of equal shares among equally filled strata follows
that order). The strata span [min, max] (the released code: [min, 1.0001·max), which for a negative
maximum leaves the top sample out).

β (``beta``): None applies the paper's CIFAR-10 settings by pruning rate ``1 − ratio``
(:func:`~rlselector.selection.policies.cutoff_rate`). β is capped so that at least the budget survives
the mask (the released code would keep fewer). With ``--class-balanced`` the mask and the sampling are
done per class (the released code has no such mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..selection import scores
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.policies import apply_policy, class_quotas, cutoff_rate, lowest
from ..selection.dynamics import ProxyRecord

SCORES = ("aum", "forgetting", "el2n")
STRATA = 50


def aum(record: ProxyRecord) -> np.ndarray:
    """The authors' AUM (summed probability margins) from the record's ``prob_margin``."""
    if record.prob_margin is None:
        raise InputError(f"{record.source}: field 'prob_margin' (E x N) missing; CCS's AUM needs the per-epoch probability margin")
    return scores.accumulated_margin(record.prob_margin)


def strata_score(record: ProxyRecord, labels: np.ndarray, score: str) -> np.ndarray:
    """The score the strata split, as the released ``data_score``: AUM (low = hard), forgetting events
    (never-learned count 0, as ``generate_importance_score.py``) or EL2N at the early epoch."""
    if score == "aum":
        return aum(record)
    if score == "forgetting":
        return scores.forgetting_counts(record.correct).astype(np.float64)
    return scores.el2n(record.logits_at(record.early_epoch), labels)


def ccs_select(
    margin: np.ndarray,
    strata: np.ndarray,
    k: int,
    beta: float,
    rng: np.random.Generator,
    *,
    labels: np.ndarray | None = None,
    num_classes: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mask the ``int(β·n)`` lowest ``margin`` (AUM; per class when ``labels``), then stratified-sample
    ``k`` of the rest by the ``strata`` score.

    Returns ``(kept, priority, masked)``: kept indices, a keep priority whose top-k is ``kept``
    (masked samples lowest) and the masked indices.
    """
    n = len(strata)
    if labels is None:
        groups, quotas = [np.arange(n)], [k]
    else:
        groups = [np.flatnonzero(labels == c) for c in range(num_classes)]
        quotas = list(class_quotas(labels, k, num_classes))
    masked = [members[lowest(margin[members], min(int(beta * len(members)), len(members) - int(quota)))]
              for members, quota in zip(groups, quotas)]
    masked = np.sort(np.concatenate(masked)) if masked else np.empty(0, dtype=np.int64)
    remaining = np.setdiff1d(np.arange(n), masked)
    local_kept, local_priority = apply_policy(
        "stratified", np.asarray(strata, dtype=np.float64)[remaining], k, rng,
        labels=None if labels is None else labels[remaining], num_classes=num_classes,
    )
    priority = np.full(n, -1.0)
    priority[remaining] = local_priority
    return remaining[local_kept], priority, masked


@register_method
class CCS(SelectionMethod):
    name = "ccs"
    summary = "coverage-centric: drop the lowest-AUM β (mislabel mask), stratified sampling over score strata"
    inputs = ("proxy",)
    reference = "Zheng et al., Coverage-centric Coreset Selection for High Pruning Rates, ICLR 2023"

    @dataclass
    class Params:
        score: str = param("aum", "score the strata split: aum (paper), forgetting or el2n; the mask is by AUM whatever it is", choices=SCORES)
        beta: float | None = param(None, "share of lowest-AUM samples masked out; None = the paper's setting for the pruning rate", ge=0, lt=1)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(
            self.name,
            logits=[None] if self.params.score == "el2n" else [],
            min_epochs=2 if self.params.score == "forgetting" else 1,
        )
        if ctx.dynamics is not None and ctx.dynamics.prob_margin is None:
            raise InputError(f"method {self.name!r}: {ctx.dynamics.source} has no field 'prob_margin' (E x N); the AUM mask needs it")

    def run(self, ctx: SelectionContext) -> MethodResult:
        record = ctx.proxy()
        strata = strata_score(record, ctx.labels, self.params.score)
        beta = cutoff_rate(ctx.ratio) if self.params.beta is None else self.params.beta
        kept, priority, masked = ccs_select(
            aum(record), strata, ctx.budget, beta, ctx.rng("ccs"),
            labels=ctx.labels if ctx.class_balanced else None, num_classes=ctx.dataset.num_classes,
        )
        return MethodResult(
            scores=priority,
            indices=kept,
            raw_scores=strata,
            info={
                "raw_score": f"strata score: {self.params.score}" + (" (lower = harder)" if self.params.score == "aum" else " (higher = harder)"),
                "beta": beta,
                "masked": int(len(masked)),
                "strata": STRATA,
            },
        )
