"""CIFAR-10 and CIFAR-100 from their python versions (``cifar-10-batches-py``, ``cifar-100-python``).

The path after ``cifar10:`` is the extracted directory or its parent. The batch files are pickles,
read through the allow-list unpickler of :mod:`.pickles`; a bad batch is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .base import Dataset, as_labels, make_dataset, validate_split
from .files import extracted_dir
from .pickles import load_pickle
from .registry import register_source


def _pickle_field(record: Any, key: bytes, path: Path, fix: str) -> Any:
    """A field of a CIFAR pickle: bytes keys in the official files, str keys if re-pickled by Python 3."""
    for candidate in (key, key.decode()):
        if isinstance(record, dict) and candidate in record:
            return record[candidate]
    raise InputError(f"{path}: no field {key.decode()!r}; this is not a CIFAR batch file. {fix}")


@dataclass(frozen=True)
class _CifarLayout:
    name: str
    title: str
    folder: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    names_key: bytes
    labels_key: bytes

    @property
    def expected(self) -> str:
        files = ", ".join((*self.train_files, self.test_file, self.meta_file))
        return f"the extracted {self.title} python directory '{self.folder}' (holding {files}) or its parent"


CIFAR10 = _CifarLayout(
    "cifar10", "CIFAR-10", "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta", b"label_names", b"labels",
)
CIFAR100 = _CifarLayout(
    "cifar100", "CIFAR-100", "cifar-100-python", ("train",), "test", "meta", b"fine_label_names", b"fine_labels",
)
_CIFAR_PIXELS = 3 * 32 * 32


def _read_cifar_batch(
    path: Path, layout: _CifarLayout, num_classes: int, fix: str
) -> tuple[torch.Tensor, np.ndarray]:
    batch = load_pickle(path, fix)
    data = np.asarray(_pickle_field(batch, b"data", path, fix))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise InputError(
            f"{path}: field 'data' must be uint8 rows of {_CIFAR_PIXELS} pixels, got {data.dtype} {data.shape}. {fix}"
        )
    labels = as_labels(
        _pickle_field(batch, layout.labels_key, path, fix),
        where=f"{path}: field {layout.labels_key.decode()!r}",
        fix=fix,
    )
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32))  # each row is the R, G, then B 32x32 plane
    validate_split(images, labels, num_classes, where=str(path), fix=fix)
    return images, labels


def _load_cifar(root: str | None, layout: _CifarLayout) -> Dataset:
    directory = extracted_dir(root, layout.folder, layout.meta_file, layout.expected)
    fix = f"Re-extract the {layout.title} python archive into {directory.parent}."
    meta_path = directory / layout.meta_file
    names = _pickle_field(load_pickle(meta_path, fix), layout.names_key, meta_path, fix)
    classes = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in names)
    train = [_read_cifar_batch(directory / file, layout, len(classes), fix) for file in layout.train_files]
    test_images, test_labels = _read_cifar_batch(directory / layout.test_file, layout, len(classes), fix)
    return make_dataset(
        layout.name,
        torch.cat([images for images, _ in train]),
        np.concatenate([labels for _, labels in train]),
        test_images,
        test_labels,
        classes,
        source=str(directory),
        train_where=f"{directory} ({', '.join(layout.train_files)})",
        test_where=str(directory / layout.test_file),
        fix=fix,
    )


@register_source("cifar10", "CIFAR-10 python batches, 50k/10k 32x32 colour images, 10 classes", needs_path=True)
def load_cifar10(root: str | None = None) -> Dataset:
    """CIFAR-10 from ``cifar-10-batches-py/`` (data_batch_1..5, test_batch, batches.meta) or its parent."""
    return _load_cifar(root, CIFAR10)


@register_source("cifar100", "CIFAR-100 python files, 50k/10k 32x32 colour images, 100 fine classes", needs_path=True)
def load_cifar100(root: str | None = None) -> Dataset:
    """CIFAR-100 (fine labels) from ``cifar-100-python/`` (train, test, meta) or its parent."""
    return _load_cifar(root, CIFAR100)
