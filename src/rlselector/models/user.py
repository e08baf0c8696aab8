"""The user's own model, wherever the project trains one (``select(model=...)``, ``train_model(model=...)``,
``--model path/to/file.py:build``).

A model factory is any callable ``build(*, in_channels, num_classes, image_size) -> nn.Module``. The
module it returns is used as it is when it keeps the project's contract (``features(x)`` and a last
``nn.Linear`` called ``classifier``, as :class:`~rlselector.models.registry.ImageClassifier`); any
other module is wrapped by :class:`FeatureHooked`, which reads the penultimate features as the input
of the module's last ``nn.Linear`` (or of ``feature_layer`` when named). That is the documented
feature hook: a selection method sees exactly what the user's classifier head sees.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import InputError

ModelFactory = Callable[..., nn.Module]


class FeatureHooked(nn.Module):
    """A user's module with the contract added: ``features(x)`` is the input of its head
    ``classifier`` (the last ``nn.Linear``), ``forward(x) == classifier(features(x))``."""

    def __init__(self, module: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.module = module
        self.classifier = head
        self.feature_dim = head.in_features
        self._captured: torch.Tensor | None = None
        head.register_forward_pre_hook(self._capture)

    def _capture(self, _head: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self._captured = args[0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        self._captured = None
        self.module(x)
        if self._captured is None:
            raise InputError("the model's forward never called its last nn.Linear; name the head with feature_layer=")
        features, self._captured = self._captured.flatten(1), None
        return features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def as_classifier(module: nn.Module, *, feature_layer: str | None = None) -> nn.Module:
    """``module`` itself when it has ``features`` and a linear ``classifier``; else wrapped with the feature hook."""
    if not isinstance(module, nn.Module):
        raise InputError(f"a model factory must return a torch nn.Module, got {type(module).__name__}")
    if feature_layer is None and callable(getattr(module, "features", None)) and isinstance(getattr(module, "classifier", None), nn.Linear):
        if not hasattr(module, "feature_dim"):
            module.feature_dim = module.classifier.in_features
        return module
    if feature_layer is not None:
        head = dict(module.named_modules()).get(feature_layer)
        if not isinstance(head, nn.Linear):
            raise InputError(f"feature_layer {feature_layer!r} is not an nn.Linear of the model (its linear layers: "
                             f"{', '.join(n for n, m in module.named_modules() if isinstance(m, nn.Linear)) or 'none'})")
    else:
        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise InputError("the model has no nn.Linear head: selection reads the penultimate features as the input of the last nn.Linear")
        head = linears[-1]
    return FeatureHooked(module, head)


def build_user_model(factory: ModelFactory, *, in_channels: int, num_classes: int, image_size: int) -> nn.Module:
    """Call ``factory`` with the keyword arguments it declares among the data's shape, then add the contract."""
    shape = {"in_channels": in_channels, "num_classes": num_classes, "image_size": image_size}
    accepted = inspect.signature(factory).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values()):
        shape = {key: value for key, value in shape.items() if key in accepted}
    return as_classifier(factory(**shape))


def describe(factory: ModelFactory) -> str:
    """``file-or-module:qualname`` of a factory: what manifests record of a user's model."""
    try:
        where = inspect.getsourcefile(factory) or factory.__module__
    except TypeError:
        where = getattr(factory, "__module__", "?")
    return f"{where}:{getattr(factory, '__qualname__', type(factory).__name__)}"


def load_factory(spec: str) -> ModelFactory:
    """The factory named by ``path/to/file.py:build`` (``--model``). The file is the user's own code and
    runs on import, as any Python module does."""
    path_text, sep, name = spec.rpartition(":")
    path = Path(path_text)
    if not sep or not name or path.suffix != ".py":
        raise InputError(f"--model {spec!r}: give a registered model name or FILE.py:FUNCTION, e.g. --model my_net.py:build")
    if not path.is_file():
        raise InputError(f"--model {spec!r}: {path} not found")
    module_name = f"rlselector_user_model_{abs(hash(path.resolve()))}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module
    loader.loader.exec_module(module)
    factory = getattr(module, name, None)
    if not callable(factory):
        raise InputError(f"--model {spec!r}: {path} defines no callable {name!r}")
    return factory
