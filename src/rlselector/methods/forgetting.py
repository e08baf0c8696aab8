"""Forgetting: count how often a sample goes from learned to forgotten during training; keep the most forgotten.

Toneva, Sordoni, des Combes, Trischler, Bengio, Gordon, "An Empirical Study of Example Forgetting
during Deep Neural Network Learning", ICLR 2019 (arXiv:1812.05159). A forgetting event is a
transition from correctly to incorrectly classified between two consecutive presentations of a
sample; samples never learned count as forgotten infinitely often (the paper ranks them first).

Here the presentations are the proxy's epochs (correctness from the training forward pass, on the
augmented batch, as in the paper). Never-learned samples score ``E`` (the number of recorded epochs,
above any possible count). Many samples share a count (often 0), so ties are broken by the mean
training loss (higher = kept first) instead of by index: the score is ``count + rank(mean loss)``
with the rank scaled into [0, 1), so its integer part is the count (``tie_break="none"`` keeps the
bare count, ties then going to the lower index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import scores
from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method
from ..selection.policies import ranks01


def forgetting_score(correct: np.ndarray, loss: np.ndarray | None = None) -> np.ndarray:
    """Forgetting events per sample, never-learned = E; plus ``rank(mean loss)`` in [0, 1) if ``loss`` is given."""
    counts = scores.forgetting_events(correct)
    if loss is not None:
        counts += ranks01(np.asarray(loss, dtype=np.float64).mean(axis=0))
    return counts


@register_method
class Forgetting(ScoreMethod):
    name = "forgetting"
    summary = "forgetting events (learned → forgotten) over the proxy's epochs; keep the most forgotten"
    inputs = ("proxy",)
    reference = "Toneva et al., An Empirical Study of Example Forgetting during Deep Neural Network Learning, ICLR 2019"
    raw_score_name = "forgetting events, never learned = E (+ mean-loss rank in [0, 1) as tie-break)"

    @dataclass
    class Params:
        tie_break: str = param("loss", "order inside equal counts: 'loss' (higher mean training loss first) or 'none' (by index)", choices=("loss", "none"))
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, min_epochs=2)

    def score(self, ctx: SelectionContext) -> np.ndarray:
        record = ctx.proxy()
        correct = np.asarray(record.correct)
        self.details = {
            "epochs": int(correct.shape[0]),
            "never_learned": int(scores.never_learned(correct).sum()),
            "unforgettable": int(((scores.forgetting_counts(correct) == 0) & ~scores.never_learned(correct)).sum()),
        }
        return forgetting_score(correct, record.loss if self.params.tie_break == "loss" else None)
