"""Models: CIFAR-style ResNet-18/50, VGG-16-BN, DenseNet-121 and ViT-Small, built by name.

Every model exposes ``features(x)`` (penultimate features, ``(B, feature_dim)``) and ``classifier``
(its last ``nn.Linear``), with ``model(x) == model.classifier(model.features(x))``. The user's own
model joins through a factory (:mod:`rlselector.models.user`).
"""

from . import densenet as _densenet  # noqa: F401  (importing a model module registers it)
from . import resnet as _resnet  # noqa: F401
from . import vgg as _vgg  # noqa: F401
from . import vit as _vit  # noqa: F401
from .registry import MODELS, ImageClassifier, ModelEntry, build_model, list_models, register_model
from .user import ModelFactory, as_classifier, build_user_model, describe, load_factory

__all__ = [
    "MODELS", "ImageClassifier", "ModelEntry", "ModelFactory", "as_classifier", "build_model", "build_user_model",
    "describe", "list_models", "load_factory", "register_model",
]
