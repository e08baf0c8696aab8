"""Your own ``torch.utils.data.Dataset`` as a :class:`~.base.Dataset`: :func:`from_torch`.

The samples are read once, eagerly, into uint8 tensors rather than through a lazy
:class:`~.base.ImageStore`:

- the fingerprint hashes the pixels, so it is the same on every load and for any wrapper that
  yields the same images (a lazy store would need a content description a generic dataset lacks);
- training draws random batches every epoch; one uint8 tensor serves them without calling Python
  per sample (and is 4x smaller than float pixels);
- a dataset that augments inside ``__getitem__`` is caught at once (the training loop augments).

The cost is one pass over the data at load time and ``N x C x H x W`` bytes of memory (150 MB for
CIFAR-10); data too large for that needs an :class:`~.base.ImageStore` of its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from .base import Dataset, RawSplit, make_raw_dataset
from .images import ImageReader, any_pixels

TORCH_FIX = (
    "from_torch takes a map-style dataset whose ds[i] is (image, label): a PIL image or a (C, H, W) "
    "tensor (float in [0, 1] or uint8), and an integer class id or a class name."
)


def _samples(ds: Any, what: str) -> int:
    """The number of samples of a map-style dataset; anything else is refused."""
    streaming = isinstance(ds, torch.utils.data.IterableDataset)
    if streaming or not (hasattr(ds, "__getitem__") and hasattr(ds, "__len__")):
        raise InputError(
            f"from_torch: {what} is a {type(ds).__name__}, not a map-style dataset (with __len__ and "
            f"__getitem__); an IterableDataset cannot be indexed. {TORCH_FIX}"
        )
    if len(ds) == 0:
        raise InputError(f"from_torch: {what} holds no samples. {TORCH_FIX}")
    return len(ds)


def _sample(ds: Any, i: int, where: str) -> tuple[tuple[np.ndarray, bool], Any]:
    """The pixels and the raw label of ``ds[i]``."""
    item = ds[i]
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        size = f" of {len(item)} values" if isinstance(item, (tuple, list)) else ""
        raise InputError(f"{where}: is a {type(item).__name__}{size}; expected (image, label). {TORCH_FIX}")
    return any_pixels(item[0], where, TORCH_FIX), item[1]


def _read(ds: Any, what: str, reader: ImageReader, progress: bool) -> RawSplit:
    """The samples of one dataset."""
    count = _samples(ds, what)
    first = f"from_torch: {what}[0]"
    if not np.array_equal(_sample(ds, 0, first)[0][0], _sample(ds, 0, first)[0][0]):
        raise InputError(
            f"{first}: returns another image each time it is read (a random transform?); give the dataset "
            f"without augmentation, the training loop augments"
        )

    labels: list[Any] = []

    def items():
        for i in range(count):
            where = f"from_torch: {what}[{i}]"
            pixels, label = _sample(ds, i, where)
            labels.append(label)
            yield where, pixels

    images = reader.stack(count, items(), progress=f"reading {what}" if progress else None)
    return RawSplit(images, labels, lambda i: f"from_torch: {what}[{i}] label", f"from_torch: {what}")


def from_torch(
    ds: Any,
    classes: Sequence[str] | None = None,
    test: Any = None,
    *,
    name: str | None = None,
    hflip: bool = True,
    progress: bool = True,
) -> Dataset:
    """A map-style ``torch.utils.data.Dataset`` of ``(image, label)`` samples as a :class:`Dataset`.

    Images are PIL images or ``(C, H, W)`` / ``(H, W)`` tensors or arrays (C = 1 or 3; float in
    [0, 1] or uint8), all of one size; they become RGB, or one channel when every image is. Labels
    are integer class ids or class names. ``classes`` names the classes (default: ``ds.classes``
    when the dataset has it, as torchvision's do; else sorted label names, or '0'..'K-1').
    ``test`` is an optional test dataset of the same kind. ``name`` (default ``torch:<class name>``)
    appears in run names; ``hflip=False`` where a mirrored image is another class (digits, text).
    The dataset must return the same sample every time it is read: no random augmentation.
    Sample IDs are the indices into ``ds``.
    """
    reader = ImageReader(size_fix="Resize them to one size in the dataset (e.g. a Resize transform).")
    kind = type(ds)
    return make_raw_dataset(
        name or f"torch:{kind.__name__}",
        _read(ds, "ds", reader, progress),
        _read(test, "test", reader, progress) if test is not None else None,
        classes if classes is not None else getattr(ds, "classes", None),
        source=f"{kind.__module__}.{kind.__qualname__}",
        fix=TORCH_FIX,
        hflip=hflip,
    )
