"""The dataset object every layer uses: uint8 images, integer labels, a content fingerprint.

A split yields ``(image, label, index)``; the training loop reads whole batches with
:meth:`Split.batch`. Images stay uint8 ``(N, C, H, W)`` until a batch is drawn, so Fashion-MNIST
costs 47 MB and CIFAR-10 150 MB of memory. Sources too large for memory hand in an
:class:`ImageStore` that decodes images on demand (anything indexable by an index tensor that
returns a uint8 tensor; :mod:`.stores`), and a subset of one reads nothing until a batch is drawn.
Every training sample has an ID (:attr:`Dataset.sample_ids`) that names it in the user's own terms
(a file path, an ID column, or its index) and follows it through every subset.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from ..errors import InputError

log = logging.getLogger(__name__)


class ImageStore(Protocol):
    """Anything that returns uint8 images ``(B, C, H, W)`` for an index tensor."""

    shape: Sequence[int]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor: ...

    def __len__(self) -> int: ...

    def content_id(self) -> str:
        """A description of the content (paths, sizes) that changes whenever the pixels do."""
        ...


def file_slug(text: str) -> str:
    """``text`` reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "data"


class IndexedImages:
    """Some images of a store, by index, without reading them (a subset of a lazy dataset)."""

    def __init__(self, store: ImageStore, index: torch.Tensor) -> None:
        if isinstance(store, IndexedImages):
            store, index = store.store, store.index[index]
        self.store, self.index = store, index
        self.shape = (len(index), *store.shape[1:])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.store[self.index[index]]

    def content_id(self) -> str:
        return f"{self.store.content_id()}[{hashlib.sha256(self.index.numpy().astype(np.int64).tobytes()).hexdigest()}]"


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
        """The samples at ``index``; a lazy store's are not read (an :class:`IndexedImages` view)."""
        index = torch.as_tensor(np.asarray(index), dtype=torch.long)
        images = self.images[index] if isinstance(self.images, torch.Tensor) else IndexedImages(self.images, index)
        return Split(images=images, labels=self.labels[index])

    @property
    def label_array(self) -> np.ndarray:
        return self.labels.numpy()

    @property
    def has_images(self) -> bool:
        """False for a labels-only split (a user's loop hands rlselector labels, not images: shape (N, 0, 0, 0))."""
        return all(int(size) > 0 for size in tuple(self.images.shape)[1:])


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
    source_ids: np.ndarray | None = field(default=None, compare=False, repr=False)
    """The training samples' IDs when they are not their index here; read them as :attr:`sample_ids`."""

    def __post_init__(self) -> None:
        if self.source_ids is not None and len(self.source_ids) != len(self.train):
            raise ValueError(f"dataset {self.name!r}: {len(self.source_ids)} sample IDs for {len(self.train)} training samples")

    # --- shapes -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(height, width)`` of every image."""
        return int(self.train.images.shape[2]), int(self.train.images.shape[3])

    @property
    def image_size(self) -> int:
        """The side of square images; for other shapes the shorter side, the one that bounds how far
        a model can pool and how much a crop can shift. A consumer that needs square images checks
        :attr:`image_shape`."""
        return min(self.image_shape)

    def __len__(self) -> int:
        return len(self.train)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        """``(image as float in [0, 1], label)`` of training sample ``i``: a dataset (or a selection's
        ``subset``) is a map-style torch dataset, so ``DataLoader(sel.subset(data))`` works."""
        image, label, _ = self.train[i]
        return image, label

    @cached_property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.train.label_array, minlength=self.num_classes)

    # --- identity ---------------------------------------------------------------------
    @property
    def file_slug(self) -> str:
        """The name reduced to characters safe in a file name (cache files carry it for readers)."""
        return file_slug(self.name)

    @property
    def sample_ids(self) -> np.ndarray:
        """One ID per training sample, in the order of the training split: the path relative to the
        data's root (image folder, CSV, Tiny-ImageNet), the ID column (Hugging Face), else the
        sample's index in the dataset as loaded. A subset keeps its samples' IDs, so
        ``subset.sample_ids == parent.sample_ids[subset.parent_indices]``."""
        return self.source_ids if self.source_ids is not None else np.arange(len(self), dtype=np.int64)

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
            source_ids=self.sample_ids[indices],
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
        """Per-channel mean and std (unbiased) of the training images in [0, 1], on up to 10,000
        samples, read a few million pixels at a time: exact integer sums of the uint8 pixels and of
        their squares, so memory stays bounded (32 MB, a lazy store's images included) and the numbers
        do not depend on how the images are chunked."""
        n = len(self)
        index = torch.arange(n) if n <= 10_000 else torch.linspace(0, n - 1, 10_000).long()
        sums = torch.zeros(self.in_channels, dtype=torch.int64)
        squares = torch.zeros(self.in_channels, dtype=torch.int64)
        per_chunk = max(1, 2**22 // (self.in_channels * self.image_shape[0] * self.image_shape[1]))
        for chunk in index.split(per_chunk):
            pixels = self.train.images[chunk].to(torch.int64)
            sums += pixels.sum(dim=(0, 2, 3))
            squares += pixels.square().sum(dim=(0, 2, 3))
        count = len(index) * self.image_shape[0] * self.image_shape[1]
        mean = sums.double() / count
        variance = (squares.double() - sums.double() * mean) / max(count - 1, 1)
        std = (variance.clamp_min(0).sqrt() / 255.0).clamp_min(1e-3)
        return tuple((mean / 255.0).tolist()), tuple(std.tolist())


def as_labels(values: Any, *, where: str, fix: str) -> np.ndarray:
    """Labels as int64; floats, booleans or strings are refused rather than guessed at."""
    labels = np.asarray(values)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise InputError(
            f"{where}: labels must be a 1-D array of integers, got {labels.dtype} of shape {labels.shape}. {fix}"
        )
    return labels.astype(np.int64)


def _plain_label(value: Any) -> int | str | None:
    """A label as a Python int or str; None for anything else (floats, booleans, several numbers)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    elif isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    return str(value) if isinstance(value, str) else None


def encode_labels(
    splits: Sequence[tuple[Sequence[Any], Callable[[int], str]]], classes: Sequence[str] | None, *, fix: str
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Class ids for each split's raw labels, and the class names.

    ``splits`` pairs each split's labels (the training split first) with ``where(i)``, the place of
    label ``i`` in the user's data. Labels are integers (class ids) or strings (class names), one
    kind for all. The class names are ``classes`` when given; else the sorted names of the training
    labels, or '0'..'K-1' for integer labels (K = the largest label + 1).
    """
    hint = f" {fix}" if fix else ""
    plain: list[list[int | str]] = []
    first_of_kind: dict[type, str] = {}
    for values, where in splits:
        plain.append([])
        for i, value in enumerate(values):
            label = _plain_label(value)
            if label is None:
                raise InputError(f"{where(i)}: label {value!r} is neither an integer class id nor a class name.{hint}")
            first_of_kind.setdefault(type(label), where(i))
            plain[-1].append(label)
    if len(first_of_kind) > 1:
        raise InputError(
            f"{first_of_kind[int]} has an integer label but {first_of_kind[str]} a class name; use one kind.{hint}"
        )
    given = classes is not None
    if classes is not None:
        classes = tuple(classes)
        if not all(isinstance(name, str) for name in classes):
            raise InputError(f"classes must be strings, got {list(classes)[:5]}.{hint}")
        duplicated = [name for name, count in Counter(classes).items() if count > 1]
        if duplicated:
            raise InputError(f"class {duplicated[0]!r} is named twice; class names must be unique")
    elif str in first_of_kind:
        classes = tuple(sorted({str(label) for label in plain[0]}))
    else:
        classes = tuple(str(k) for k in range(max((int(label) for labels in plain for label in labels), default=-1) + 1))
    class_ids = {name: k for k, name in enumerate(classes)}
    encoded = []
    for labels, (_, where) in zip(plain, splits):
        for i, label in enumerate(labels):
            if isinstance(label, str) and label not in class_ids:
                reason = f"not one of the {len(classes)} classes given" if given else "no training sample has this class"
                raise InputError(f"{where(i)}: class {label!r} is unknown ({reason}).{hint}")
            if isinstance(label, int) and not 0 <= label < len(classes):
                raise InputError(f"{where(i)}: label {label} must lie in [0, {len(classes)}).{hint}")
        encoded.append(np.array([class_ids[x] if isinstance(x, str) else x for x in labels], dtype=np.int64))
    return encoded, classes


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
    sample_ids: Sequence[str] | Sequence[int] | None = None,
) -> Dataset:
    """Validate arrays read by a source and assemble them into a :class:`Dataset`.

    ``sample_ids`` name the training samples, one unique ID each (see :attr:`Dataset.sample_ids`);
    None: their index.
    """
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
        source_ids=None if sample_ids is None else np.asarray(sample_ids),
    )


@dataclass(frozen=True)
class RawSplit:
    """One split as a source read it, before its labels are class ids."""

    images: tuple[np.ndarray, bool]
    """RGB uint8 ``(N, 3, H, W)`` images and whether every one is single-channel (an ImageReader's stack)."""
    labels: Sequence[Any]
    """Integer class ids or class names, as :func:`encode_labels` takes them."""
    label_where: Callable[[int], str]
    """The place of label ``i`` in the user's data, for messages."""
    where: str
    """The split's place in the user's data, for messages."""


def make_raw_dataset(
    name: str,
    train: RawSplit,
    test: RawSplit | None,
    classes: Sequence[str] | None,
    *,
    source: str,
    fix: str = "",
    hflip: bool = True,
    sample_ids: Sequence[str] | Sequence[int] | None = None,
) -> Dataset:
    """:func:`make_dataset` from raw splits: labels encoded by :func:`encode_labels`, one channel when
    every image of both splits is single-channel, else RGB."""
    splits = [train] if test is None else [train, test]
    labels, classes = encode_labels([(split.labels, split.label_where) for split in splits], classes, fix=fix)
    channels = 1 if all(split.images[1] for split in splits) else 3
    images = [torch.from_numpy(np.ascontiguousarray(split.images[0][:, :channels])) for split in splits]
    return make_dataset(
        name,
        images[0],
        labels[0],
        images[1] if test is not None else None,
        labels[1] if test is not None else None,
        classes,
        source=source,
        train_where=train.where,
        test_where=test.where if test is not None else "",
        hflip=hflip,
        fix=fix,
        sample_ids=sample_ids,
    )
