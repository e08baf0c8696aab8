"""EL2N: the error L2-norm early in training; keep the hardest samples.

Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet: Finding Important Examples Early in
Training", NeurIPS 2021 (arXiv:2107.07075); released code github.com/mansheej/data_diet
(``scores.py`` ``l2_error``, ``scripts/get_mean_score.py``). The score of sample ``i`` is
``E_seeds ‖softmax(f(x_i)) − onehot(y_i)‖₂`` from a network early in its training (the paper: epoch
10–20 of 200, averaged over 10 runs; ``run_keep_max_scores.py`` keeps the highest, globally). Here
the networks are proxy runs, the epoch their early recorded epoch (≈ 20 % of the proxy's training)
and the logits those of an un-augmented eval-mode pass; ``seeds`` proxy runs are averaged, 10 as the
paper (the first is the run every method shares; the other nine are cached and charged as proxy time).
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
        seeds: int | None = param(None, "proxy runs (seeds) the score is averaged over; None = 10 as the paper (1 with --dynamics, "
                                        "which are one run); 1 = the shared run only", ge=1, example=10)
        policy: str = policy_param("keep-highest")

    def runs(self, ctx: SelectionContext) -> int:
        """Proxy runs to average: ``seeds``, else the paper's 10 (the user's dynamics are one run)."""
        return self.params.seeds or (1 if ctx.dynamics is not None else 10)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, logits=[self.params.epoch], seeds=self.runs(ctx))

    def score(self, ctx: SelectionContext) -> np.ndarray:
        records = ctx.proxy_records(self.runs(ctx))
        epoch = records[0].early_epoch if self.params.epoch is None else self.params.epoch
        self.details = {"epoch": epoch, "proxy_runs": len(records)}
        return np.mean([scores.el2n(record.logits_at(epoch), ctx.labels) for record in records], axis=0)
