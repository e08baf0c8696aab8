"""Image stores for data larger than memory (see :class:`~.base.ImageStore`): files decoded on demand
and the one-off uint8 cache on disk that a store can be decoded into.

A lazy store holds a few numbers per image (a path as bytes in one numpy array, or an offset in a
shard), never pixels: memory stays that of a batch, whatever the number of images. Its batches are
decoded where they are read, in the DataLoader workers of the training loop (``workers=``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from ..io import TEMPORARY_SUFFIX
from ..progress import step_progress
from .base import ImageStore, Split
from .files import SourceOptions
from .images import file_pixels
from .loader import read_batches

log = logging.getLogger(__name__)

CACHE_CHUNK = 256
"""Images decoded per item while a cache is built."""
CACHE_WORKERS = min(8, os.cpu_count() or 1)
"""Processes decoding a cache of more than four chunks (a smaller one is decoded in this process)."""


class DecodedImages:
    """Images decoded one by one when a batch asks for them, to RGB uint8 ``(3, size, size)``.
    Subclasses say how to decode image ``i`` and what describes their content."""

    def __init__(self, count: int, size: int) -> None:
        self.shape = (count, 3, size, size)
        self.size = size
        self._content: str | None = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        rows = torch.as_tensor(index).reshape(-1).tolist()
        images = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        for row, i in enumerate(rows):
            images[row] = self.decode(i)
        return torch.from_numpy(images)

    def decode(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> Iterator[str]:
        """Lines that change whenever the pixels do (names, byte sizes, modification times)."""
        raise NotImplementedError

    def content_id(self) -> str:
        if self._content is None:
            digest = hashlib.sha256(repr(self.shape).encode())
            for line in self.describe():
                digest.update(line.encode() + b"\n")
            self._content = f"{type(self).__name__}:{digest.hexdigest()}"
        return self._content


def file_stamp(path: Path) -> str:
    """Byte size and modification time of a file, the part of a content id that follows an edit."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


class FileImages(DecodedImages):
    """Image files under ``root``, decoded on demand: stretched to ``size`` squared as the in-memory
    image folder decodes them (the same pixels), or with ``crop`` their shorter side resized to
    ``size`` and the centre cut out. The content id covers each file's relative path, byte size and
    modification time (not the root: a moved tree keeps its id; a copy that resets the times does not)."""

    def __init__(self, root: Path, files: Sequence[str], size: int, *, crop: bool) -> None:
        super().__init__(len(files), size)
        self.root, self.crop = root, crop
        self.files = np.array([name.encode() for name in files])
        """Paths relative to ``root`` as one bytes array: no Python object per file for a forked worker to copy."""

    def path(self, i: int) -> Path:
        return self.root / self.files[i].decode()

    def decode(self, i: int) -> np.ndarray:
        path = self.path(i)
        return file_pixels(path, str(path), self.size, crop=self.crop)[0]

    def describe(self) -> Iterator[str]:
        yield f"crop={self.crop}"
        for i in range(len(self)):
            yield f"{self.files[i].decode()}:{file_stamp(self.path(i))}"


class MemmapImages:
    """Images decoded once into a uint8 ``.npy`` file, read through a memory map: a batch reads its
    rows only, and the operating system's page cache keeps what fits. The content id is that of the
    store it was decoded from, so a dataset has one fingerprint with or without its cache."""

    def __init__(self, path: Path, content: str) -> None:
        self.path, self._content = path, content
        self._array: np.ndarray | None = None
        self.shape = tuple(self.array.shape)

    @property
    def array(self) -> np.ndarray:
        if self._array is None:  # opened in each process that reads it (a map does not cross a fork or pickle)
            try:
                self._array = np.load(self.path, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise InputError(f"{self.path}: the image cache cannot be read ({err}); delete it, it is rebuilt at the next load") from err
        return self._array

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.array[torch.as_tensor(index).reshape(-1).numpy()]))

    def content_id(self) -> str:
        return self._content


def disk_cache(store: ImageStore, directory: Path, name: str) -> MemmapImages:
    """``store`` decoded once into ``directory/<name>-<shape>-<content key>.npy`` and read from there:
    the first load decodes every image (with several processes, a progress bar) into a temporary file
    renamed into place when complete, so an interrupted build leaves no cache; later loads of the same
    content reuse it, and changed content gets a new file."""
    content = store.content_id()
    key = hashlib.sha256(content.encode()).hexdigest()[:16]
    path = Path(directory) / f"{name}-{'x'.join(map(str, store.shape))}-{key}.npy"
    if not path.exists():
        _build_cache(store, path)
    cached = MemmapImages(path, content)
    if cached.shape != tuple(store.shape) or cached.array.dtype != np.uint8:
        raise InputError(f"{path}: holds {cached.array.dtype} images of shape {cached.shape}, not uint8 {tuple(store.shape)}; "
                         f"delete it, it is rebuilt at the next load")
    return cached


def _build_cache(store: ImageStore, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(handle)
    chunks = list(torch.arange(len(store)).split(CACHE_CHUNK))
    workers = CACHE_WORKERS if len(chunks) > 4 else 0
    log.info("decoding %d images once into %s (%d worker processes)", len(store), path, workers)
    try:
        array = np.lib.format.open_memmap(temporary, mode="w+", dtype=np.uint8, shape=tuple(store.shape))
        source = Split(images=store, labels=torch.zeros(len(store), dtype=torch.long))
        with step_progress(f"caching {path.name}", len(store)) as advance:
            for index, images, _ in read_batches(source, chunks, workers=workers, pin_memory=False, generator=torch.Generator()):
                array[index.numpy()] = images.numpy()
                advance(len(index))
        array.flush()
        del array
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def required_size(options: SourceOptions, spec: str) -> int:
    """The ``?size=N`` a lazy source needs: it decodes each image when drawn, so the size is fixed up front."""
    if options.size is None:
        raise InputError(f"{spec}: reading images on demand needs their size up front; add ?size=N (every image decoded to NxN)")
    return options.size


def lazy_images(store: ImageStore, cache: Path | None, name: str) -> ImageStore:
    """``store`` itself, or with ``cache`` (a directory) its :func:`disk_cache` there."""
    return store if cache is None else disk_cache(store, cache, name)
