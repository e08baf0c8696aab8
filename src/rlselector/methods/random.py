"""Random: a uniform subset (class-balanced with ``--class-balanced``), the reference every method must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection.method import ScoreMethod, SelectionContext, register_method


@register_method
class RandomSelection(ScoreMethod):
    name = "random"
    summary = "uniform random subset (class-balanced with --class-balanced)"
    default_policy = "random"
    raw_score_name = "none"

    @dataclass
    class Params:
        pass

    def score(self, ctx: SelectionContext) -> np.ndarray:
        return np.zeros(len(ctx.dataset))
