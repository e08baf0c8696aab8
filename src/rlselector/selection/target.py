"""The target network of methods that train their own (RL-Selector, cover-static).

Trained on the full training set with a named recipe through the one training loop, with an
atomic checkpoint per epoch under the selection's work directory so ``--resume`` continues exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from ..data.base import Dataset
from ..errors import InputError
from ..models.user import ModelFactory, describe
from ..recipes import Recipe, get_recipe
from ..train import TrainConfig, TrainHook, TrainResult, build_for, train

TARGET_DIR = "target"
"""Sub-directory of a method's work directory holding the target network's checkpoint and log."""


def target_recipe(recipe: str, epochs: int | None, seed: int) -> tuple[Recipe, TrainConfig]:
    """The named recipe and its training configuration, with ``epochs`` overridden when given and the run's seed."""
    chosen = get_recipe(recipe)
    recipe = replace(chosen.train, seed=seed)
    if epochs is not None and epochs != recipe.epochs:
        # a multi-step schedule keeps its decays at the same share of training (30/90 of 60 epochs: 20)
        scaled = sorted({round(m * epochs / recipe.epochs) for m in recipe.milestones} & set(range(1, epochs)))
        recipe = replace(recipe, epochs=epochs, milestones=tuple(scaled))
    return chosen, recipe


def check_cover_inputs(method: str, dataset: Dataset) -> None:
    """What every cover-based method refuses before any work beyond its declared parameters: classes
    too small for a cover."""
    small = [dataset.classes[k] for k, count in enumerate(dataset.class_counts) if count < 2]
    if small:
        raise InputError(f"{method}: class(es) {small} have fewer than 2 training samples; ε-sample cover needs at least 2 per class")


def target_description(named: Recipe, factory: ModelFactory | None, epochs: int) -> dict[str, object]:
    """What a manifest records of the target network: the user's factory or the recipe's model."""
    if factory is not None:
        return {"model": f"user: {describe(factory)}", "epochs": epochs}
    return {"model": named.model, "width": named.width, "epochs": epochs}


def train_target(
    dataset: Dataset,
    named: Recipe,
    recipe: TrainConfig,
    *,
    workdir: Path | None,
    resume: bool,
    progress: bool,
    hooks: Sequence[TrainHook] = (),
    model: nn.Module | None = None,
    factory: ModelFactory | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, TrainResult]:
    """Train the target on all of ``dataset``: ``model`` as given, else a fresh one seeded from the
    recipe, built by the user's ``factory`` or as the recipe's registered model. ``runtime``: train()'s
    ``device``, ``amp``, ``channels_last``, ``compile`` and ``workers`` (None = train()'s defaults)."""
    net = model if model is not None else build_for(dataset, factory or named.model, named.width, recipe.seed)
    out = workdir / TARGET_DIR if workdir is not None else None
    result = train(net, dataset, recipe, hooks=hooks, out_dir=out, resume=resume, progress=progress, evaluate_test=False,
                   **(runtime or {}))
    return net, result
