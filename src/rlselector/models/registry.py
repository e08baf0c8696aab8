"""Models register by name; ``build_model("resnet18", in_channels=1, num_classes=10, image_size=28)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import InputError


class ImageClassifier(nn.Module):
    """The contract every model keeps: ``forward(x) == classifier(features(x))``.

    ``features(x)`` returns the penultimate features, shape ``(B, feature_dim)``; ``classifier`` is the
    model's last ``nn.Linear`` (selection methods read features and per-sample gradients of this layer).
    """

    feature_dim: int
    classifier: nn.Linear
    frozen_cpu_inference: bool = False
    """Whether long eval-mode passes on a CPU may run a TorchScript copy frozen for inference (batch
    norm folded into the convolutions, oneDNN kernels; ``train.evaluate.forward_split``). ResNet and
    VGG set it: 1.2–1.7× faster passes at the same numbers to float rounding; DenseNet (0.9×) and the
    ViT (0.8×) run slower frozen and stay eager (BENCHMARKS.md, "Eval-mode pass")."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


ModelBuilder = Callable[..., ImageClassifier]
"""``builder(*, in_channels, num_classes, image_size, width)`` returns a freshly initialised model."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    summary: str
    build: ModelBuilder
    default_width: int
    """The width of the paper's model; ``build_model(..., width=None)`` uses it."""
    square_only: bool = False
    """Whether the model needs square images (a ViT's patch grid); CNNs take any H × W."""


MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, summary: str, *, default_width: int = 64, square_only: bool = False) -> Callable[[ModelBuilder], ModelBuilder]:
    def wrap(build: ModelBuilder) -> ModelBuilder:
        if name in MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        MODELS[name] = ModelEntry(name=name, summary=summary, build=build, default_width=default_width, square_only=square_only)
        return build

    return wrap


def list_models() -> list[str]:
    return sorted(MODELS)


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int,
    width: int | None = None,
) -> ImageClassifier:
    """Build a freshly initialised model; the same ``torch.manual_seed`` gives the same weights.

    ``width`` is the base channel count (64 = the paper's model, smaller for CPU runs); None = 64.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    entry = MODELS[name]
    for field, value in (("in_channels", in_channels), ("num_classes", num_classes), ("image_size", image_size)):
        _require_positive_int(field, value)
    if width is not None:
        _require_positive_int("width", width)
    return entry.build(
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        width=entry.default_width if width is None else width,
    )


def _require_positive_int(field: str, value: object) -> None:
    # bool is an int subclass, but True as a channel count is a caller's bug.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InputError(f"model {field} must be a positive integer, got {value!r}")
