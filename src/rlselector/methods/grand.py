"""GraNd: the expected gradient norm of a sample's loss at initialisation; keep the largest.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training", NeurIPS 2021 (arXiv:2107.07075); released code github.com/mansheej/data_diet
(``scores.py`` ``grad_norm``, ``scripts/get_mean_score.py``): ``E_seeds ‖∇_θ ℓ(x_i, y_i)‖₂`` of
networks at initialisation (checkpoint 0), averaged over 10 independent initialisations, the
highest kept globally.

**Approximation (stated):** the gradient is taken with respect to the proxy's *last linear layer*
only (weights and bias), as DeepCore's ``grand.py`` does, not all parameters. For that layer it is
exact and needs no backward pass: with features ``h`` (its input) and residual
``r = softmax(z) − onehot(y)``, ``∇_W ℓ = r hᵀ`` and ``∇_b ℓ = r``, so
``‖∇_{W,b} ℓ‖ = ‖r‖·‖[h, 1]‖``. Features and logits come from one un-augmented eval-mode pass of the
proxy at ``epoch`` (0, the initial weights, by default; the paper also scores early in training,
``epoch=None`` = the early recorded epoch, ≈ 20 % of training). ``seeds`` proxy runs are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method


@register_method
class GraNd(ScoreMethod):
    name = "grand"
    summary = "last-layer gradient norm ‖∇ℓ‖ of proxies at initialisation, averaged over seeds; keep the largest"
    inputs = ("proxy",)
    reference = "Paul et al., Deep Learning on a Data Diet, NeurIPS 2021"
    raw_score_name = "last-layer gradient norm (higher = more important)"

    @dataclass
    class Params:
        epoch: int | None = param(0, "proxy epoch whose features/logits are scored: 0 = at initialisation (the paper's GraNd); "
                                     "None = the early recorded epoch (~20% of training)", ge=0)
        seeds: int | None = param(None, "proxy runs (seeds) the norm is averaged over; None = 10 as the paper (1 with --dynamics, "
                                        "which are one run); 1 = the shared run only", ge=1, example=10)
        policy: str = policy_param("keep-highest")

    def runs(self, ctx: SelectionContext) -> int:
        """Proxy runs to average: ``seeds``, else the paper's 10 (the user's dynamics are one run)."""
        return self.params.seeds or (1 if ctx.dynamics is not None else 10)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, logits=[self.params.epoch], features=[self.params.epoch], seeds=self.runs(ctx))

    def score(self, ctx: SelectionContext) -> np.ndarray:
        records = ctx.proxy_records(self.runs(ctx))
        epoch = records[0].early_epoch if self.params.epoch is None else self.params.epoch
        self.details = {"epoch": epoch, "proxy_runs": len(records), "gradient": "last layer (weights and bias), exact"}
        return np.mean(
            [scores.grad_norms(record.features_at(epoch), record.logits_at(epoch), ctx.labels) for record in records], axis=0
        )
