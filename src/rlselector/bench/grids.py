"""The built-in benchmark grids (``rlselector bench --grid NAME``), written in the YAML schema of
:mod:`rlselector.bench.grid`, so a YAML file holding the same mapping runs the same grid."""

from __future__ import annotations

from typing import Any

from ..api import list_methods

ALL_METHODS = tuple(method.name for method in list_methods())
"""Every registered method: the grids that claim "every method" run these."""

TARGET_TRAINING_METHODS = tuple(method.name for method in list_methods() if "target-training" in method.inputs)
"""Methods that train their own target network; the grids give them a recipe (``recipe`` parameter)."""


def _target_recipes(recipe: str) -> dict[str, dict[str, Any]]:
    """``method_params`` giving every target-training method the recipe ``recipe``."""
    return {m: {"recipe": recipe} for m in TARGET_TRAINING_METHODS}


_CPU_TINY_PROXY = {"model": "resnet18", "width": 8, "epochs": 3, "batch_size": 64, "lr": 0.05, "record_epochs": [0, 1, 2, 3]}
_CPU_PROXY = {"model": "resnet18", "width": 8, "epochs": 5, "batch_size": 128, "lr": 0.1, "record_epochs": [0, 1, 3, 5]}
# cpu-full, cpu-transfer, cpu-noise and cpu-cross-arch evaluate with batch-norm statistics recomputed on the subset
# after the last epoch (stale running statistics were most of one selection's scatter over evaluation seeds; the
# paired differences between selections still scatter by 0.8-2 points, BENCHMARKS.md "under the recalibrated
# protocol") and hold out a 10 % class-stratified validation split to choose defaults on.
_RECALIBRATED = {"validation": 0.1, "recipe": {"base": "cpu", "recalibrate_bn": True}}
_CPU_GRID = {  # shared by cpu-full, cpu-transfer and cpu-noise: their cells at a shared ratio and seed are the same
    "data": "fashion-mnist", "limit": 8000, "models": [{"name": "resnet18", "width": 8}], **_RECALIBRATED,
    "method_params": _target_recipes("cpu"), "proxy": _CPU_PROXY, "threads": 1,
}
_PAPER_MODELS = ["resnet50", "resnet18", "vgg16", "densenet121", "vit_small"]
_PAPER_RATIOS = [0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]

GRIDS: dict[str, dict[str, Any]] = {
    "cpu-quick": {
        "summary": "every method, 50 %, one seed, Fashion-MNIST 2,000/2,000, ResNet-18 w8 2 epochs: ≤ 5 min on 2 cores",
        "data": "fashion-mnist", "limit": 2000, "test_limit": 2000,
        "methods": list(ALL_METHODS), "ratios": [0.5], "seeds": [0],
        "models": [{"name": "resnet18", "width": 8}], "recipe": "cpu-tiny",
        "method_params": _target_recipes("cpu-tiny"), "proxy": _CPU_TINY_PROXY,
        "analysis": {"max_samples": 1000, "tsne": {"samples": 800}}, "threads": 1,
    },
    "cpu-full": {
        "summary": "Fashion-MNIST 8,000 train / 10,000 test, every method, 30/50/70/90 %, 3 seeds, ResNet-18 w8 5 epochs "
                   "(resumable: run it again to continue; measured about 65 min per seed on one thread, seeds as parallel runs with --seeds, see BENCHMARKS.md)",
        **_CPU_GRID, "methods": list(ALL_METHODS), "ratios": [0.3, 0.5, 0.7, 0.9], "seeds": [0, 1, 2],
        "analysis": {"max_samples": 4000, "tsne": {"method": "rl-selector", "ratio": 0.9, "samples": 2000}},
    },
    "cpu-cross-arch": {
        "summary": "select with ResNet-18, evaluate with ResNet-18/50, VGG-16, DenseNet-121, ViT-small (width 8, Fashion-MNIST 4,000)",
        "data": "fashion-mnist", "limit": 4000, "test_limit": 2000,
        "methods": ["random", "rl-selector", "cover-static", "moderate", "el2n", "forgetting"], "ratios": [0.5], "seeds": [0, 1],
        "models": [{"name": m, "width": 8} for m in ("resnet18", "resnet50", "vgg16", "densenet121", "vit_small")],
        "validation": 0.1, "recipe": {"base": "cpu-tiny", "epochs": 3, "recalibrate_bn": True},
        "method_params": _target_recipes("cpu-tiny"), "proxy": _CPU_TINY_PROXY,
        "analysis": None, "threads": 1,
    },
    "cpu-transfer": {
        "summary": "pre-train on a selected Fashion-MNIST subset, fine-tune on MNIST 5,000 for 5 epochs (the paper's Table 1 analogue; "
                   "2 epochs scattered random's seeds over 61-83 %, BENCHMARKS.md)",
        **_CPU_GRID, "methods": ["random", "rl-selector", "cover-static", "moderate", "el2n", "forgetting"], "ratios": [0.5, 0.9],
        "seeds": [0, 1, 2], "transfer": {"data": "mnist", "limit": 5000, "recipe": {"base": "cpu", "epochs": 5, "lr": 0.02, "recalibrate_bn": True}},
        "analysis": None,
    },
    "cpu-noise": {
        "summary": "20 % of Fashion-MNIST training labels flipped (seed 0) vs clean: which methods keep the noise?",
        **_CPU_GRID, "label_noise": [0.0, 0.2], "noise_seed": 0,
        "methods": ["random", "rl-selector", "cover-static", "el2n", "forgetting", "moderate", "ccs"], "ratios": [0.5, 0.7],
        "seeds": [0, 1, 2], "analysis": None,
    },
    "paper-cifar10": {
        "summary": "CIFAR-10 (--data-root): the paper's recipe (method.md §6), ResNet-18 selects; ResNet-50 headline + cross-architecture",
        "data": "cifar10", "methods": list(ALL_METHODS), "ratios": _PAPER_RATIOS, "seeds": [0, 1, 2],
        "models": [{"name": m, "width": 64} for m in _PAPER_MODELS], "recipe": "paper",
        "method_params": _target_recipes("paper"),
        "analysis": {"model": "resnet50", "tsne": {"method": "rl-selector", "ratio": 0.9, "samples": 5000}},
    },
    "paper-cifar100": {
        "summary": "CIFAR-100 (--data-root): the paper's recipe, ResNet-18 selects, ResNet-50 and ResNet-18 evaluate",
        "data": "cifar100", "methods": list(ALL_METHODS), "ratios": _PAPER_RATIOS, "seeds": [0, 1, 2],
        "models": [{"name": "resnet50", "width": 64}, {"name": "resnet18", "width": 64}], "recipe": "paper",
        "method_params": _target_recipes("paper"),
        "analysis": {"model": "resnet50", "tsne": {"method": "rl-selector", "ratio": 0.9, "samples": 5000}},
    },
    "paper-tiny-imagenet": {
        "summary": "Tiny-ImageNet (--data-root): 90 epochs, lr 0.1 ÷10 at 30/60, wd 1e-4, ResNet-18 selects and evaluates (+ResNet-50)",
        "data": "tiny-imagenet", "methods": list(ALL_METHODS), "ratios": _PAPER_RATIOS, "seeds": [0, 1, 2],
        "models": [{"name": "resnet18", "width": 64}, {"name": "resnet50", "width": 64}], "recipe": "paper-tiny-imagenet",
        "method_params": _target_recipes("paper-tiny-imagenet"),
        "analysis": {"model": "resnet18", "tsne": {"method": "rl-selector", "ratio": 0.9, "samples": 5000}},
    },
}
