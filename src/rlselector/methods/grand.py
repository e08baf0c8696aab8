"""GraNd: the expected gradient norm of a sample's loss early in training; keep the largest.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training", NeurIPS 2021 (arXiv:2107.07075): ``E_seeds ‖∇_θ ℓ(x_i, y_i)‖₂``.

**Approximation (stated):** the gradient is taken with respect to the proxy's *last linear layer*
only (weights and bias), as DeepCore's ``grand.py`` does, not all parameters. For that layer it is
exact and needs no backward pass: with features ``h`` (its input) and residual
``r = softmax(z) − onehot(y)``, ``∇_W ℓ = r hᵀ`` and ``∇_b ℓ = r``, so
``‖∇_{W,b} ℓ‖ = ‖r‖·‖[h, 1]‖``. Features and logits come from one un-augmented eval-mode pass at
the proxy's early recorded epoch (≈ 20 % of training; the paper also scores at initialisation,
available with ``epoch=0`` when the proxy records epoch 0). ``seeds`` proxy runs are averaged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method


@register_method
class GraNd(ScoreMethod):
    name = "grand"
    summary = "last-layer gradient norm ‖∇ℓ‖ of a proxy early in training; keep the largest"
    inputs = ("proxy",)
    reference = "Paul et al., Deep Learning on a Data Diet, NeurIPS 2021"
    raw_score_name = "last-layer gradient norm (higher = more important)"

    @dataclass
    class Params:
        epoch: int | None = param(None, "proxy epoch whose features/logits are scored; None = the early recorded epoch (~20% of training)", ge=0)
        seeds: int = param(1, "proxy runs (seeds) the norm is averaged over; the paper uses 10", ge=1)
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, logits=[self.params.epoch], features=[self.params.epoch], seeds=self.params.seeds)

    def score(self, ctx: SelectionContext) -> np.ndarray:
        records = ctx.proxy_records(self.params.seeds)
        epoch = records[0].early_epoch if self.params.epoch is None else self.params.epoch
        self.details = {"epoch": epoch, "proxy_runs": len(records), "gradient": "last layer (weights and bias), exact"}
        return np.mean(
            [scores.grad_norms(record.features_at(epoch), record.logits_at(epoch), ctx.labels) for record in records], axis=0
        )
