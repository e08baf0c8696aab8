"""EL2N: the error L2-norm early in training; keep the hardest samples.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training", NeurIPS 2021 (arXiv:2107.07075). The score of sample ``i`` is
``E_seeds ‖softmax(f(x_i)) − onehot(y_i)‖₂`` from a proxy network early in its training (the
paper: epoch 10–20 of 200, averaged over 10 seeds). Here the network is the shared proxy, the
epoch its early recorded epoch (≈ 20 % of the proxy's training) and the logits those of an
un-augmented eval-mode pass; ``seeds`` proxy runs are averaged (default 1: one proxy run, the one
every method shares; the paper's 10 cost 10 proxy trainings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method


@register_method
class EL2N(ScoreMethod):
    name = "el2n"
    summary = "error L2-norm ‖softmax − onehot‖ of a proxy early in training; keep the hardest"
    inputs = ("proxy",)
    reference = "Paul et al., Deep Learning on a Data Diet, NeurIPS 2021"
    raw_score_name = "el2n (higher = harder)"

    @dataclass
    class Params:
        epoch: int | None = param(None, "proxy epoch whose logits are scored; None = the early recorded epoch (~20% of training)", ge=0)
        seeds: int = param(1, "proxy runs (seeds) the score is averaged over; the paper uses 10", ge=1)
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, logits=[self.params.epoch], seeds=self.params.seeds)

    def score(self, ctx: SelectionContext) -> np.ndarray:
        records = ctx.proxy_records(self.params.seeds)
        epoch = records[0].early_epoch if self.params.epoch is None else self.params.epoch
        self.details = {"epoch": epoch, "proxy_runs": len(records)}
        return np.mean([scores.el2n(record.logits_at(epoch), ctx.labels) for record in records], axis=0)
