"""The target network of methods that train their own (RL-Selector, cover-static).

Trained on the full training set with a named preset's recipe through the one training loop, with an
atomic checkpoint per epoch under the selection's work directory so ``--resume`` continues exactly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from torch import nn

from ..data.base import Dataset
from ..errors import InputError
from ..presets import Preset, get_preset
from ..train import TrainConfig, TrainHook, TrainResult, build_for, train

TARGET_DIR = "target"
"""Sub-directory of a method's work directory holding the target network's checkpoint and log."""


def target_recipe(preset: str, epochs: int | None, seed: int) -> tuple[Preset, TrainConfig]:
    """The preset and its recipe, with ``epochs`` overridden when given and the run's seed."""
    chosen = get_preset(preset)
    if epochs is not None and epochs < 1:
        raise InputError(f"epochs must be at least 1, got {epochs}")
    recipe = replace(chosen.train, seed=seed, epochs=epochs if epochs is not None else chosen.train.epochs)
    return chosen, recipe


def train_target(
    dataset: Dataset,
    preset: Preset,
    recipe: TrainConfig,
    *,
    workdir: Path | None,
    resume: bool,
    progress: bool,
    hooks: Sequence[TrainHook] = (),
    model: nn.Module | None = None,
) -> tuple[nn.Module, TrainResult]:
    """Train the target (a fresh one seeded from the recipe, or ``model``) on all of ``dataset``."""
    net = model if model is not None else build_for(dataset, preset.model, preset.width, recipe.seed)
    out = workdir / TARGET_DIR if workdir is not None else None
    result = train(net, dataset, recipe, hooks=hooks, out_dir=out, resume=resume, progress=progress, evaluate_test=False)
    return net, result
