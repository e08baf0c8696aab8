"""ImageNet-1k (ILSVRC-2012) in its extracted layout, read lazily: 1.28 M JPEGs never fit in memory.

``imagenet:/path?size=N`` lists the files once, then decodes each batch when it is drawn (in the
training loop's DataLoader workers, ``--workers``); ``&cache=DIR`` decodes them once into a
memory-mapped uint8 file instead (at 64x64: 15.7 GB for the training set), reused by later loads.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import Dataset, file_slug, make_dataset
from .files import path_and_options
from .folder import class_folders, listed_images, read_label_list, wordnet_names
from .images import labelled_images, warn_skipped
from .registry import register_source
from .stores import FileImages, lazy_images, required_size

IMAGENET_LAYOUT = (
    "root/train/<wnid>/*.JPEG and a validation split as root/val/<wnid>/*.JPEG, or a flat root/val/*.JPEG "
    "labelled by root/LOC_val_solution.csv (ImageId,PredictionString) or root/val_labels.txt (<file> <wnid> per line)"
)
LABEL_FILES = ("LOC_val_solution.csv", "val_labels.txt")


def _parse_solution(line: str) -> tuple[str, ...] | None:
    """A line of Kaggle's LOC_val_solution.csv: ``ImageId,<wnid> <box> [<wnid> <box> ...]``."""
    fields = next(csv.reader(io.StringIO(line)))
    if fields[:1] == ["ImageId"]:
        return ()
    return (fields[0], fields[1].split()[0]) if len(fields) >= 2 and fields[1].split() else None


def _parse_pair(line: str) -> tuple[str, ...] | None:
    """A line of val_labels.txt: ``<file name, extension optional> <wnid>`` (space, tab or comma)."""
    fields = line.replace(",", " ").split()
    return (Path(fields[0]).stem, fields[1]) if len(fields) == 2 else None


def _val_split(directory: Path, class_ids: dict[str, int], fix: str) -> tuple[list[Path], np.ndarray, list[Path]] | None:
    """The validation images, their labels and the files skipped: ``val/<wnid>/`` folders, or a flat
    ``val/`` labelled by one of :data:`LABEL_FILES` (in the root or in ``val/``); None without ``val/``."""
    val_dir = directory / "val"
    if not val_dir.is_dir():
        return None
    if any(entry.is_dir() for entry in val_dir.iterdir()):
        folders, others = class_folders(val_dir, IMAGENET_LAYOUT)
        unknown = [folder for folder in folders if folder.name not in class_ids]
        if unknown:
            raise InputError(f"{unknown[0]}: {unknown[0].name!r} has no training folder in {directory / 'train'}. {fix}")
        paths, labels, skipped = labelled_images([(folder, class_ids[folder.name]) for folder in folders], fix)
        return paths, labels, others + skipped
    for name in LABEL_FILES:
        for place in (directory, val_dir):
            if (place / name).is_file():
                parse, expected = (_parse_solution, "'ImageId,wnid x y x y'") if name.endswith(".csv") else (_parse_pair, "'<file> <wnid>'")
                labelled = read_label_list(place / name, class_ids, fix, parse=parse, expected=expected, known="a training class folder")
                return listed_images(val_dir, labelled, place / name, fix, key=lambda path: path.stem)
    raise InputError(f"{val_dir}: a flat folder of images but no label file ({' or '.join(LABEL_FILES)} in {directory} or {val_dir}). {fix}")


@register_source(
    "imagenet",
    "ImageNet-1k (ILSVRC-2012) train/<wnid>/ and val/, decoded on demand: imagenet:/path?size=N[&cache=DIR]",
    needs_path=True,
)
def load_imagenet(root: str | None = None) -> Dataset:
    """ImageNet from ``root/train/<wnid>/*.JPEG``; the validation set (``val/<wnid>/``, or a flat
    ``val/`` with ``LOC_val_solution.csv`` or ``val_labels.txt``) is the test split.

    Classes are the sorted training wnids (the usual class ids 0-999); their names are the first
    synonym in ``LOC_synset_mapping.txt`` when the root has one. ``?size=N`` is required: each image's
    shorter side is resized to N (bilinear, after JPEG's own reduction where the photo is at least
    twice as large) and the centre NxN cut out, as RGB (greyscale and CMYK JPEGs included). Nothing is
    decoded up front: a damaged file is refused, by name, when first read. Sample IDs are the
    training paths relative to the root (``train/n01440764/n01440764_10026.JPEG``).
    """
    directory, options = path_and_options(root, "imagenet", IMAGENET_LAYOUT, directory=True, allowed=("size", "cache"))
    size = required_size(options, f"imagenet:{directory}")
    fix = f"Expected {IMAGENET_LAYOUT}."
    folders, others = class_folders(directory / "train", IMAGENET_LAYOUT)
    wnids = [folder.name for folder in folders]
    class_ids = {wnid: k for k, wnid in enumerate(wnids)}
    train_paths, train_labels, skipped = labelled_images([(folder, class_ids[folder.name]) for folder in folders], fix)
    val = _val_split(directory, class_ids, fix)
    warn_skipped(others + skipped + (val[2] if val else []), directory)

    def images(files: list[str], split: str):
        return lazy_images(FileImages(directory, files, size, crop=True), options.cache,
                           f"{file_slug('imagenet-' + directory.resolve().name)}-{split}")

    train_files = [path.relative_to(directory).as_posix() for path in train_paths]
    return make_dataset(
        "imagenet",
        images(train_files, "train"),
        train_labels,
        images([path.relative_to(directory).as_posix() for path in val[0]], "val") if val else None,
        val[1] if val else None,
        wordnet_names(directory / "LOC_synset_mapping.txt", wnids, fix),
        source=str(directory),
        train_where=str(directory / "train"),
        test_where=str(directory / "val"),
        fix=fix,
        sample_ids=train_files,
    )
