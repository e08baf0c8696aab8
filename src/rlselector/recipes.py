"""Named training recipes: a model, its width and a training configuration, for target networks and
evaluation (``--recipe cpu``). Benchmark grids are another thing: :mod:`rlselector.bench.grids`.

``cpu`` is sized for a 2-core machine (a full-data Fashion-MNIST run in a few minutes);
the ``paper*`` recipes are method.md §6's, for users with the data and a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import InputError
from .train import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    model: str
    """Registered model name (``rlselector.models``)."""
    width: int
    """Width multiplier: ResNet base channels (64 = the paper's)."""
    train: TrainConfig

    def with_seed(self, seed: int) -> "Recipe":
        return replace(self, train=replace(self.train, seed=seed))


RECIPES: dict[str, Recipe] = {
    recipe.name: recipe
    for recipe in (
        Recipe("cpu", "ResNet-18 width 16, 5 epochs, batch 128, SGD 0.1 cosine: ~4 min on Fashion-MNIST with 2 CPU cores",
               "resnet18", 16, TrainConfig(epochs=5, batch_size=128, lr=0.1, weight_decay=5e-4)),
        Recipe("cpu-tiny", "ResNet-18 width 8, 2 epochs: smoke tests and --limit runs",
               "resnet18", 8, TrainConfig(epochs=2, batch_size=64, lr=0.05, weight_decay=5e-4)),
        Recipe("paper", "the paper's CIFAR recipe: ResNet-18 width 64, 200 epochs, batch 256, SGD 0.1 cosine, wd 5e-4",
               "resnet18", 64, TrainConfig(epochs=200, batch_size=256, lr=0.1, weight_decay=5e-4)),
        Recipe("paper-tiny-imagenet", "Tiny-ImageNet: ResNet-18 width 64, 90 epochs, lr 0.1 ÷10 at 30 and 60, wd 1e-4",
               "resnet18", 64, TrainConfig(epochs=90, batch_size=256, lr=0.1, weight_decay=1e-4, schedule="multistep", milestones=(30, 60))),
        Recipe("paper-imagenet", "ImageNet-1k: ResNet-50 width 64, lr 0.01, batch 256, wd 1e-3, 90 epochs cosine",
               "resnet50", 64, TrainConfig(epochs=90, batch_size=256, lr=0.01, weight_decay=1e-3)),
    )
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; known recipes: {', '.join(RECIPES)}")
    return RECIPES[name]
