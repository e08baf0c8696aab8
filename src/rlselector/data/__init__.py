"""Data: sources (built-in and user), the dataset object, transforms."""

from . import builtin as _builtin  # noqa: F401  (registers the built-in sources)
from . import user as _user  # noqa: F401  (registers the user sources: cifar10, folder, npz, ...)
from .base import Dataset, Split
from .registry import SOURCES, load_dataset

__all__ = ["Dataset", "Split", "SOURCES", "load_dataset"]
