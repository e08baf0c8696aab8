"""WebDataset shards (``.tar`` files of ``<key>.<jpg|jpeg|png>`` + ``<key>.cls``), read with the
standard library's ``tarfile`` and decoded on demand.

``webdataset:/data/train-{000..009}.tar?size=N`` (or a folder of ``.tar`` shards) lists every shard
once: the byte offset of each image and the integer class in each ``.cls``. A batch then reads just
its images' bytes from the shards, in any order (the loop's shuffle needs random access; a tar is
uncompressed, so an offset is enough), and decodes them, in the training loop's DataLoader workers.
``&test=PATTERN`` names the test shards; ``&cache=DIR`` decodes every image once into a memory-mapped
file there.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import InputError
from .base import Dataset, encode_labels, file_slug, make_dataset
from .files import split_options
from .images import file_pixels
from .registry import register_source
from .stores import DecodedImages, file_stamp, lazy_images, required_size

WEBDATASET_LAYOUT = ".tar shards of <key>.jpg|jpeg|png and <key>.cls (the class id as text): /path/shards-{000..009}.tar or a folder of .tar files"
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png")
_RANGE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def expand_braces(pattern: str) -> list[str]:
    """``shards-{000..009}.tar`` → ``shards-000.tar`` ... ``shards-009.tar`` (zero padding as written;
    several ranges expand in turn, the first one outermost)."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    first, last = match.groups()
    if int(last) < int(first):
        raise InputError(f"webdataset:{pattern}: the range {match.group(0)} runs backwards; write it {{{last}..{first}}}")
    head, tail = pattern[: match.start()], pattern[match.end():]
    return [name for k in range(int(first), int(last) + 1) for name in expand_braces(f"{head}{k:0{len(first)}d}{tail}")]


def shard_paths(pattern: str) -> list[Path]:
    """The shards a spec names: a folder's ``*.tar`` files (sorted), else the expanded pattern, each one there."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        shards = sorted(entry for entry in path.iterdir() if entry.suffix == ".tar" and not entry.name.startswith("."))
        if not shards:
            raise InputError(f"{path}: holds no .tar shards; expected {WEBDATASET_LAYOUT}")
        return shards
    shards = [Path(name).expanduser() for name in expand_braces(pattern)]
    for shard in shards:
        if not shard.is_file():
            raise InputError(f"{shard}: no such shard; expected {WEBDATASET_LAYOUT}")
    return shards


def _index_shard(shard: Path, keys: dict[str, str]) -> tuple[list[tuple[int, int]], list[int], list[str]]:
    """Each sample's ``(image offset, image bytes)``, its class and key, in the shard's order; ``keys``
    (key → shard of every sample so far) catches a key used twice."""
    try:
        archive = tarfile.open(shard, mode="r:")  # uncompressed only: random access needs plain offsets
    except (tarfile.TarError, OSError) as err:
        raise InputError(f"{shard}: not a readable uncompressed tar ({err}); expected {WEBDATASET_LAYOUT}") from err
    samples: dict[str, dict[str, Any]] = {}
    with archive:
        for member in archive:
            if not member.isfile():
                continue
            folder, base = posixpath.split(member.name)
            stem, dot, extension = base.partition(".")
            if not dot or base.startswith("."):
                continue
            sample = samples.setdefault(posixpath.join(folder, stem), {})
            extension = extension.lower()
            if extension == "cls":
                text = archive.extractfile(member).read().decode("utf-8", "replace").strip()  # type: ignore[union-attr]
                if not text.isdigit():
                    raise InputError(f"{shard}: {member.name} holds {text[:40]!r}, not a class id (an integer of at least 0)")
                sample["cls"] = int(text)
            elif extension in IMAGE_EXTENSIONS:
                if "image" in sample:
                    raise InputError(f"{shard}: sample {posixpath.join(folder, stem)!r} has two images ({sample['name']}, {member.name}); keep one")
                sample.update(image=(member.offset_data, member.size), name=member.name)
    if not samples:
        raise InputError(f"{shard}: holds no samples; expected {WEBDATASET_LAYOUT}")
    for key, sample in samples.items():
        missing = [part for part in ("image", "cls") if part not in sample]
        if missing:
            what = "an image (.jpg, .jpeg or .png)" if "image" in missing else "a .cls file"
            raise InputError(f"{shard}: sample {key!r} lacks {what}; every sample needs {key}.<jpg|png> and {key}.cls")
        if key in keys:
            raise InputError(f"{shard}: sample key {key!r} is also in {keys[key]}; keys must be unique across the shards")
        keys[key] = shard.name
    return [s["image"] for s in samples.values()], [s["cls"] for s in samples.values()], list(samples)


class ShardImages(DecodedImages):
    """The images of WebDataset shards, read by offset and decoded on demand (shorter side to
    ``size``, centre crop; an image of that size already is kept as it is). Each process opens the
    shards it reads once and keeps them open."""

    def __init__(self, shards: list[Path], shard_of: np.ndarray, offsets: np.ndarray, sizes: np.ndarray, keys: np.ndarray, size: int) -> None:
        super().__init__(len(offsets), size)
        self.shards, self.shard_of, self.offsets, self.sizes, self.keys = shards, shard_of, offsets, sizes, keys
        self._open: dict[int, BinaryIO] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_open": {}}  # file handles stay in the process that opened them

    def decode(self, i: int) -> np.ndarray:
        shard = int(self.shard_of[i])
        if shard not in self._open:
            self._open[shard] = open(self.shards[shard], "rb")
        # pread, not seek + read: DataLoader workers forked after a read share the handle's file offset
        data = os.pread(self._open[shard].fileno(), int(self.sizes[i]), int(self.offsets[i]))
        return file_pixels(io.BytesIO(data), f"{self.shards[shard]}: {self.keys[i].decode()}", self.size, crop=True)[0]

    def describe(self) -> Iterator[str]:
        for shard in self.shards:
            yield f"{shard.name}:{file_stamp(shard)}"
        yield str(len(self))


def _read_shards(pattern: str, size: int) -> tuple[ShardImages, list[int], list[str]]:
    shards = shard_paths(pattern)
    keys: dict[str, str] = {}
    shard_of, places, labels, names = [], [], [], []
    for number, shard in enumerate(shards):
        shard_places, shard_labels, shard_keys = _index_shard(shard, keys)
        shard_of += [number] * len(shard_places)
        places += shard_places
        labels += shard_labels
        names += shard_keys
    offsets, sizes = np.array(places, dtype=np.int64).T
    images = ShardImages(shards, np.array(shard_of, dtype=np.int32), offsets, sizes, np.array([k.encode() for k in names]), size)
    return images, labels, names


@register_source(
    "webdataset",
    "WebDataset .tar shards (<key>.jpg|png + <key>.cls): webdataset:/path/shards-{000..009}.tar?size=N[&test=PATTERN][&cache=DIR]",
    needs_path=True,
)
def load_webdataset(root: str | None = None) -> Dataset:
    """Training samples from the shards ``root`` names (a brace pattern such as
    ``train-{000..099}.tar``, one shard, or a folder of ``.tar`` shards), in shard order and, within
    a shard, in the tar's order; the test split from ``&test=PATTERN`` when given.

    A sample is the files sharing a key (the member's path up to the first dot of its name):
    ``<key>.jpg``, ``.jpeg`` or ``.png``, and ``<key>.cls`` holding the class id as text. Other files
    (``.json``, ``.txt`` ...) are ignored. Classes are ``'0'`` to ``'K-1'`` for the largest id K-1; each
    must have training samples. ``?size=N`` is required: every image is decoded to NxN RGB (shorter
    side resized, centre crop). Shards must be uncompressed tars (``.tar.gz`` has no random access).
    Sample IDs are the keys, which must be unique across the shards.
    """
    pattern, options = split_options(root, "webdataset", allowed=("size", "test", "cache"))
    if not pattern:
        raise InputError(f"no path given; expected {WEBDATASET_LAYOUT}")
    size = required_size(options, f"webdataset:{pattern}")
    train, train_labels, train_keys = _read_shards(pattern, size)
    test, test_labels = (_read_shards(options.test, size)[:2]) if options.test else (None, None)
    fix = "Each <key>.cls holds the sample's class id, an integer from 0."
    splits = [(train_labels, lambda i: f"{train.shards[int(train.shard_of[i])]}: {train_keys[i]}.cls")]
    if test is not None:
        splits.append((test_labels, lambda i: f"{test.shards[int(test.shard_of[i])]}: {test.keys[i].decode()}.cls"))
    labels, classes = encode_labels(splits, None, fix=fix)
    name = f"webdataset:{Path(pattern).stem}"
    return make_dataset(
        name,
        lazy_images(train, options.cache, f"{file_slug(name)}-train"),
        labels[0],
        lazy_images(test, options.cache, f"{file_slug(name)}-test") if test is not None else None,
        labels[1] if test is not None else None,
        classes,
        source=pattern,
        train_where=pattern,
        test_where=options.test or "",
        fix=fix,
        sample_ids=train_keys,
    )
