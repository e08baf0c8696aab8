"""Data: the sources (each module registers its own on import), the dataset object, transforms."""

from . import builtin as _builtin  # noqa: F401  (registers fashion-mnist, mnist, digits)
from . import cifar as _cifar  # noqa: F401  (registers cifar10, cifar100)
from . import folder as _folder  # noqa: F401  (registers folder, tiny-imagenet)
from . import npz as _npz  # noqa: F401  (registers npz)
from .base import Dataset, Split
from .registry import SOURCES, load_dataset

__all__ = ["Dataset", "Split", "SOURCES", "load_dataset"]
