"""MoSo: how much the empirical risk would rise if a sample were moved out of the training set.

Tan, Wu, Bai, Hou, Yu, Zhou, Wang, "Data Pruning via Moving-one-Sample-out", NeurIPS 2023
(arXiv:2310.14664); released code github.com/hrtan/MoSo (``scoring.py``: ``MoSo_scoring_exact``,
``retraining.py``: ``nopt2``). The MoSo score of ``z`` is ``L(S∖z; w_{S∖z}) − L(S; w_S)``, the change
of the empirical risk when ``z`` leaves the set, approximated to first order along the training
trajectory from the gradients at saved checkpoints; samples whose removal hurts most are kept.

**Score, as ``MoSo_scoring_exact``.** With ``g`` a sample's gradient and ``ḡ`` the mean gradient over
the N samples at a checkpoint,

    s = (2N−3)/(N−1)²·‖ḡ‖² − ‖g‖²/(N−1)² + (2N−4)/(N−1)²·⟨ḡ − g/N, g⟩,

and each checkpoint's score is multiplied by the learning rate of the epoch it ends (the code's
``scores * current_lr[-1]``) and summed. Kept: per class, the highest scores (``nopt2``).

Differences, each a parameter or stated:

- **Last layer** (stated): ``g`` is the exact gradient of the proxy's last linear layer, ``(r hᵀ, r)``
  with ``r = softmax − onehot`` and ``h`` the recorded features; the reference differentiates every
  parameter with a batch-1 backward pass per sample. Never an N×N matrix, O(N·C·d) per checkpoint.
- **Checkpoints** (``epochs``): every recorded epoch after initialisation; the reference draws 10 of
  its 50 per-epoch checkpoints at random.
- **One proxy** (stated): the reference trains 8 surrogates, each on an eighth of the set, and scores
  each sample with the surrogate that trained on it (N = an eighth); here the shared proxy saw all N.
- **Quotas** (``per_class``): ``nopt2`` gives each class ``int(size/K)``; here each class gets its
  proportional quota, summing to the budget (the same on balanced sets). ``nopt2`` masks the scores
  of other classes to 0 before its top-k, so a class whose scores are all negative would take
  samples of other classes; here a class's quota is filled from that class only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method


def moso_scores(checkpoints: list[tuple[np.ndarray, np.ndarray, float]], labels: np.ndarray) -> np.ndarray:
    """Sum over ``(features, logits, weight)`` checkpoints of ``weight`` × the reference's per-sample
    score (module docstring) on last-layer gradients."""
    n = len(labels)
    if n < 2:
        raise InputError(f"moso needs at least 2 samples (it moves one out of the rest), got {n}")
    total = np.zeros(n)
    for features, logits, weight in checkpoints:
        residual = scores.residuals(logits, labels)
        mean_weight, mean_bias = scores.mean_grad(features, residual)
        mean_sq = float((mean_weight**2).sum() + (mean_bias**2).sum())
        sq = scores.grad_sq_norms(features, residual)
        dot = scores.grad_dot(features, residual, mean_weight, mean_bias)
        score = ((2 * n - 3) * mean_sq - sq + (2 * n - 4) * (dot - sq / n)) / (n - 1) ** 2
        total += weight * score
    return total


@register_method
class MoSo(ScoreMethod):
    name = "moso"
    summary = "moving-one-sample-out: risk increase when a sample is removed (gradient agreement, last layer); keep highest per class"
    inputs = ("proxy",)
    reference = "Tan et al., Data Pruning via Moving-one-Sample-out, NeurIPS 2023 (github.com/hrtan/MoSo)"
    raw_score_name = "MoSo score (higher = removing it raises the risk more)"

    @dataclass
    class Params:
        epochs: list[int] | None = param(None, "proxy epochs used as checkpoints; None = every recorded epoch after initialisation "
                                               "(the reference draws 10 of its 50 at random)", ge=0)
        lr_weighted: bool = param(True, "weight each checkpoint by its epoch's learning rate, as the reference; False = unweighted sum")
        per_class: bool = param(True, "keep the top of each class with proportional quotas (the reference's nopt2: int(size/K) each); "
                                      "False = the global top")
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        wanted = [None] if not self.params.epochs else list(self.params.epochs)
        ctx.check_proxy_inputs(self.name, logits=wanted, features=wanted)
        if self.params.lr_weighted and ctx.dynamics is not None and ctx.dynamics.lr is None:
            raise InputError(f"method {self.name!r}: {ctx.dynamics.source} has no field 'lr' (E,) to weight checkpoints by; "
                             f"add it or pass -p lr_weighted=false")

    def ranks_per_class(self, ctx: SelectionContext) -> bool:
        return ctx.class_balanced or self.params.per_class

    def score(self, ctx: SelectionContext) -> np.ndarray:
        record = ctx.proxy()
        recorded = sorted(set(record.logit_epochs) & set(record.feature_epochs))
        epochs = list(self.params.epochs) if self.params.epochs else [e for e in recorded if e > 0]
        if not epochs:
            raise InputError(f"{record.source}: no epoch after initialisation has both 'logits_<e>' and 'features_<e>'; moso needs both")
        if self.params.lr_weighted and record.lr is None:
            raise InputError(f"{record.source}: field 'lr' (E,) missing; moso weights checkpoints by it (or -p lr_weighted=false)")
        # checkpoint e ends epoch e, whose steps ran at lr[e-1] (the initial weights take the first epoch's rate)
        weights = [float(record.lr[max(e, 1) - 1]) if self.params.lr_weighted else 1.0 for e in epochs]
        self.details = {"checkpoints": epochs, "checkpoint_weights": weights, "gradient": "last layer (weights and bias), exact"}
        return moso_scores([(record.features_at(e), record.logits_at(e), w) for e, w in zip(epochs, weights)], ctx.labels)
