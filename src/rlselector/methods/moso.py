"""MoSo: how much the empirical risk would rise if a sample were moved out of the training set.

Tan, Wu, Bai, Hou, Yu, Zhou, Wang, "Data Pruning via Moving-one-Sample-out", NeurIPS 2023
(arXiv:2310.14664). The MoSo score of ``z`` is ``L(S∖z; w_{S∖z}) − L(S; w_S)``: the change of the
empirical risk when ``z`` leaves the set. The paper approximates it to first order along the
training trajectory by the agreement of ``z``'s gradient with the gradient of the rest of the set,
averaged over checkpoints; samples whose removal hurts most (highest score) are kept.

**Approximation (stated).** With ``ḡ_t`` the mean gradient over all N samples at checkpoint ``t``,
the gradient of the rest is ``(N ḡ_t − g_i)/(N − 1)``, so up to the factor ``N/(N−1)``

    score_i = mean_t [ ⟨g_i(t), ḡ_t⟩ − ‖g_i(t)‖² / N ]

where the checkpoints are the proxy's recorded epochs (all of them by default, ``epochs``), the
mean is unweighted (the paper weights checkpoints by their learning rate) and ``g`` is the exact
gradient of the proxy's *last linear layer*, ``(r hᵀ, r)`` with ``r = softmax − onehot`` and ``h``
the recorded features — never a per-sample backward pass, never an N×N matrix (O(N·C·d) per
checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method


def moso_scores(checkpoints: list[tuple[np.ndarray, np.ndarray]], labels: np.ndarray) -> np.ndarray:
    """Mean over ``(features, logits)`` checkpoints of ``⟨g_i, ḡ⟩ − ‖g_i‖²/N`` (last-layer gradients)."""
    n = len(labels)
    total = np.zeros(n)
    for features, logits in checkpoints:
        residual = scores.residuals(logits, labels)
        weight, bias = scores.mean_grad(features, residual)
        total += scores.grad_dot(features, residual, weight, bias) - scores.grad_sq_norms(features, residual) / n
    return total / max(len(checkpoints), 1)


@register_method
class MoSo(ScoreMethod):
    name = "moso"
    summary = "moving-one-sample-out: risk increase when a sample is removed (gradient agreement, last layer); keep highest"
    inputs = ("proxy",)
    reference = "Tan et al., Data Pruning via Moving-one-Sample-out, NeurIPS 2023"
    raw_score_name = "MoSo score (higher = removing it raises the risk more)"

    @dataclass
    class Params:
        epochs: list[int] | None = param(None, "proxy epochs used as checkpoints; None = every epoch with features and logits", ge=0)
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        wanted = [None] if not self.params.epochs else list(self.params.epochs)
        ctx.check_proxy_inputs(self.name, logits=wanted, features=wanted)

    def score(self, ctx: SelectionContext) -> np.ndarray:
        record = ctx.proxy()
        epochs = list(self.params.epochs) if self.params.epochs else sorted(set(record.logit_epochs) & set(record.feature_epochs))
        if not epochs:
            raise InputError(f"{record.source}: no epoch has both 'logits_<e>' and 'features_<e>'; moso needs both")
        self.details = {"checkpoints": epochs, "gradient": "last layer (weights and bias), exact"}
        return moso_scores([(record.features_at(e), record.logits_at(e)) for e in epochs], ctx.labels)
