"""The dataset object every layer uses: uint8 images, integer labels, a content fingerprint.

A split yields ``(image, label, index)``; the training loop reads whole batches with
:meth:`Split.batch`. Images stay uint8 ``(N, C, H, W)`` until a batch is drawn, so Fashion-MNIST
costs 47 MB and CIFAR-10 150 MB of memory. Sources too large for memory hand in an object
that loads images on demand (anything indexable by an index tensor that returns a uint8 tensor).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Protocol, Sequence

import numpy as np
import torch

from ..errors import InputError

log = logging.getLogger(__name__)


class ImageStore(Protocol):
    """Anything that returns uint8 images ``(B, C, H, W)`` for an index tensor."""

    shape: Sequence[int]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Split:
    """One split (train or test) of a dataset."""

    images: torch.Tensor | ImageStore
    """uint8 ``(N, C, H, W)`` tensor, or a lazy :class:`ImageStore` of that shape."""
    labels: torch.Tensor
    """int64 ``(N,)`` class ids in ``[0, num_classes)``."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        """``(image as float in [0, 1], label, index)`` for sample ``i``."""
        i = int(i)
        image = self.images[torch.tensor([i])][0]
        return image.float().div_(255.0), int(self.labels[i]), i

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images and int64 labels of the samples in ``index``."""
        return self.images[index], self.labels[index]

    def take(self, index: np.ndarray | torch.Tensor) -> "Split":
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return Split(images=self.images[index], labels=self.labels[index])

    @property
    def label_array(self) -> np.ndarray:
        return self.labels.numpy()


@dataclass(frozen=True)
class Dataset:
    """A training split, an optional test split, and what models need to know about them."""

    name: str
    """Name used in run names and manifests (``fashion-mnist``, ``cifar10``, ...)."""
    train: Split
    test: Split | None
    classes: tuple[str, ...]
    """Class names; class id ``k`` is ``classes[k]``."""
    source: str = ""
    """Where the data came from (path or package), for messages and manifests."""
    hflip: bool = True
    """Whether horizontal flips are a valid augmentation (False for digits)."""
    parent_indices: np.ndarray | None = field(default=None, compare=False, repr=False)
    """For a subset (``--limit`` or a selection): the training indices in the parent dataset."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    # --- shapes -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[2])

    def __len__(self) -> int:
        return len(self.train)

    @cached_property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train.label_array, minlength=self.num_classes)

    # --- identity ---------------------------------------------------------------------
    @property
    def file_slug(self) -> str:
        """The name reduced to characters safe in a file name (cache files carry it for readers)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_") or "data"

    @cached_property
    def fingerprint(self) -> str:
        """``sha256:`` of the training images and labels: two datasets with the same content
        have the same fingerprint, whatever their name or path."""
        digest = hashlib.sha256()
        digest.update(repr((tuple(self.train.images.shape), self.num_classes)).encode())
        images = self.train.images
        if isinstance(images, torch.Tensor):
            digest.update(images.contiguous().numpy().tobytes())
        else:  # lazy store: hash its own content description (paths, sizes) instead of pixels
            digest.update(images.content_id().encode())  # type: ignore[attr-defined]
        digest.update(self.train.labels.numpy().astype(np.int64).tobytes())
        return "sha256:" + digest.hexdigest()

    # --- derived datasets -----------------------------------------------------------------
    def subset(self, indices: np.ndarray | Sequence[int], *, tag: str = "subset") -> "Dataset":
        """The dataset restricted to these training indices (the test split is unchanged)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self)):
            raise InputError(f"subset indices must lie in [0, {len(self)}) for dataset {self.name!r}")
        parent = indices if self.parent_indices is None else self.parent_indices[indices]
        return replace(
            self,
            name=self.name if tag == "" else f"{self.name}[{tag}]",
            train=self.train.take(indices),
            parent_indices=parent,
        )

    def limit(self, n: int, *, seed: int) -> "Dataset":
        """A seeded, class-stratified subset of ``n`` training samples (``--limit``)."""
        from sklearn.model_selection import train_test_split

        if n > len(self):
            log.warning("--limit %d exceeds the %d training samples of %r; using all of them", n, len(self), self.name)
        if n >= len(self):
            return self
        if n < self.num_classes:
            raise InputError(
                f"--limit {n} is smaller than the number of classes ({self.num_classes}) of "
                f"{self.name!r}: use at least {self.num_classes}"
            )
        # scikit-learn's stratified split needs two samples per class and one left out per class.
        counts = self.class_counts
        single = [self.classes[k] for k in np.flatnonzero(counts == 1)]
        if single:
            raise InputError(
                f"--limit {n}: class(es) {single} of {self.name!r} have a single training sample, too few "
                f"for a class-stratified subset (it needs two per class); add samples to them, or drop "
                f"--limit to use all {len(self)}"
            )
        present = int(np.count_nonzero(counts))
        if len(self) - n < present:
            raise InputError(
                f"--limit {n} leaves out {len(self) - n} of the {len(self)} training samples of {self.name!r}, "
                f"fewer than its {present} classes, so no class-stratified subset exists; use --limit "
                f"{len(self) - present} or less, or drop --limit to use all {len(self)}"
            )
        kept, _ = train_test_split(
            np.arange(len(self)), train_size=n, stratify=self.train.label_array, random_state=seed
        )
        return self.subset(np.sort(kept), tag=f"limit{n}-seed{seed}")

    # --- normalisation ---------------------------------------------------------------------
    @cached_property
    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images in [0, 1] (on up to 10,000 samples)."""
        n = len(self)
        index = torch.arange(n) if n <= 10_000 else torch.linspace(0, n - 1, 10_000).long()
        x = self.train.images[index].float().div_(255.0)
        mean = x.mean(dim=(0, 2, 3))
        std = x.std(dim=(0, 2, 3)).clamp_min(1e-3)
        return tuple(mean.tolist()), tuple(std.tolist())


def as_labels(values: Any, *, where: str, fix: str) -> np.ndarray:
    """Labels as int64; floats, booleans or strings are refused rather than guessed at."""
    labels = np.asarray(values)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise InputError(
            f"{where}: labels must be a 1-D array of integers, got {labels.dtype} of shape {labels.shape}. {fix}"
        )
    return labels.astype(np.int64)


def validate_split(images: Any, labels: np.ndarray, num_classes: int, *, where: str, fix: str = "") -> None:
    """Refuse a split whose images and labels disagree, before any training starts.

    ``where`` names the file(s) the split came from; ``fix`` says what to do about it.
    """
    hint = f" {fix}" if fix else ""
    n_images = int(images.shape[0])
    if n_images != len(labels):
        raise InputError(f"{where}: {n_images} images but {len(labels)} labels; they must match.{hint}")
    if n_images == 0:
        raise InputError(f"{where}: the split holds no samples.{hint}")
    if len(images.shape) != 4:
        raise InputError(f"{where}: images must be (N, C, H, W), got shape {tuple(images.shape)}.{hint}")
    if images.shape[2] != images.shape[3]:
        raise InputError(
            f"{where}: images are {images.shape[2]}x{images.shape[3]}; models here take square images: "
            f"resize them (for an image folder: folder:/path?size=N).{hint}"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        bad = labels[(labels < 0) | (labels >= num_classes)][:5].tolist()
        raise InputError(
            f"{where}: labels must lie in [0, {num_classes}); found {bad}.{hint}"
        )


def check_every_class_present(labels: np.ndarray, classes: Sequence[str], *, where: str) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    empty = [classes[k] for k in np.flatnonzero(counts == 0)]
    if empty:
        raise InputError(
            f"{where}: class(es) {empty} have no training samples; remove them from the class "
            f"list or add samples"
        )


def make_dataset(
    name: str,
    train_images: torch.Tensor,
    train_labels: np.ndarray,
    test_images: torch.Tensor | None,
    test_labels: np.ndarray | None,
    classes: Sequence[str],
    *,
    source: str,
    train_where: str,
    test_where: str = "",
    hflip: bool = True,
    fix: str = "",
) -> Dataset:
    """Validate arrays read by a source and assemble them into a :class:`Dataset`."""
    train_labels = np.asarray(train_labels, dtype=np.int64)
    validate_split(train_images, train_labels, len(classes), where=train_where, fix=fix)
    check_every_class_present(train_labels, classes, where=train_where)
    test = None
    if test_images is not None and test_labels is not None:
        test_labels = np.asarray(test_labels, dtype=np.int64)
        validate_split(test_images, test_labels, len(classes), where=test_where or train_where, fix=fix)
        if tuple(test_images.shape[1:]) != tuple(train_images.shape[1:]):
            raise InputError(
                f"{test_where}: test images are {tuple(test_images.shape[1:])} but training images "
                f"are {tuple(train_images.shape[1:])}; both splits must have one image shape.{' ' + fix if fix else ''}"
            )
        test = Split(images=test_images, labels=torch.from_numpy(test_labels))
    return Dataset(
        name=name,
        train=Split(images=train_images, labels=torch.from_numpy(train_labels)),
        test=test,
        classes=tuple(classes),
        source=source,
        hflip=hflip,
    )
