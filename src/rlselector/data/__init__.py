"""Data: the sources (each module registers its own on import), the dataset object, transforms,
and the ways in for data already in memory (:func:`from_torch`, :func:`from_hf`)."""

from . import builtin as _builtin  # noqa: F401  (registers fashion-mnist, mnist, digits)
from . import cifar as _cifar  # noqa: F401  (registers cifar10, cifar100)
from . import csv_list as _csv_list  # noqa: F401  (registers csv)
from . import folder as _folder  # noqa: F401  (registers folder, tiny-imagenet)
from . import imagenet as _imagenet  # noqa: F401  (registers imagenet)
from . import npz as _npz  # noqa: F401  (registers npz)
from . import webdataset as _webdataset  # noqa: F401  (registers webdataset)
from .base import Dataset, Split
from .hf import from_hf
from .registry import SOURCES, load_dataset
from .torch_data import from_torch

__all__ = ["Dataset", "Split", "SOURCES", "load_dataset", "from_torch", "from_hf"]
