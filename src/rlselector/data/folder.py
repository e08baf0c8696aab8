"""Image-folder sources: a ``train/<class>/`` tree (``folder:``) and the Tiny-ImageNet-200 layout.

Both decode their images with :class:`.images.ImageReader` (``folder:...&lazy`` decodes them on
demand instead, :class:`.stores.FileImages`; the ImageNet layout, :mod:`.imagenet`, shares the
listing and label-list helpers here). A file that is not an image (a stray
``notes.txt``) is skipped, with one warning that counts them; anything else that is not where the
layout expects it is refused by name. A sample's ID is its path relative to the root.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .base import Dataset, RawSplit, file_slug, make_dataset, make_raw_dataset
from .files import extracted_dir, path_and_options, text_lines, visible_entries
from .images import ImageReader, is_image_file, labelled_images, list_images, warn_skipped
from .registry import register_source
from .stores import FileImages, lazy_images, required_size

# --- image folder ------------------------------------------------------------------------------
FOLDER_LAYOUT = "root/train/<class>/<images> and optionally root/test/<class>/<images>"


def class_folders(split_dir: Path, expected: str) -> tuple[list[Path], list[Path]]:
    """The sub-folders of a split directory, one per class, and the non-image files beside them (to
    skip); an image file among them is refused."""
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: missing; expected {expected}")
    folders, others = [], []
    for entry in visible_entries(split_dir):
        if entry.is_dir():
            folders.append(entry)
        elif is_image_file(entry):
            raise InputError(
                f"{entry}: an image among the class folders of {split_dir}; move it into a class folder or remove it"
            )
        else:
            others.append(entry)
    if not folders:
        raise InputError(f"{split_dir}: no class folders; expected {expected}")
    return folders, others


def _class_tree(split_dir: Path, class_ids: dict[str, int]) -> tuple[list[Path], np.ndarray, list[Path]]:
    """One split of the tree: its image paths, their labels, and the non-image files skipped."""
    folders, others = class_folders(split_dir, FOLDER_LAYOUT)
    for folder in folders:
        if folder.name not in class_ids:
            raise InputError(
                f"{folder}: class {folder.name!r} has no training folder; the test classes must be a "
                f"subset of the training classes. Add it to train/ or remove it"
            )
    paths, labels, skipped = labelled_images(
        [(folder, class_ids[folder.name]) for folder in folders], fix="Add images to this class folder or delete it."
    )
    return paths, labels, others + skipped


@register_source(
    "folder",
    "an image-folder tree root/train/<class>/*.png|jpg (optional root/test/); folder:/path?size=N resizes, "
    "&lazy decodes on demand, &cache=DIR once to disk",
    needs_path=True,
)
def load_folder(root: str | None = None) -> Dataset:
    """Images from ``root/train/<class>/`` and optionally ``root/test/<class>/``.

    Class names are the sorted training sub-folder names; the test split's class folders must be a
    subset of them. Images (.png, .jpg, .jpeg, .bmp, .gif, .webp; GIFs give their first frame) are
    decoded to RGB, or to one channel when every image is greyscale; alpha is dropped and palette
    images count as colour. All images must share one size, unless ``?size=N`` resizes every image to
    NxN (bilinear); images need not be square. Only ``train/`` and ``test/`` are read. Hidden entries
    (names starting with '.') are ignored and other files that are not images skipped, with one warning;
    an image that does not decode, a sub-folder inside a class folder, or an empty class folder is refused.
    Sample IDs are the training paths relative to the root (``train/cat/0.png``).

    Data larger than memory: ``?size=N&lazy`` lists the files and decodes each batch when it is
    drawn (in the training loop's DataLoader workers), to the very pixels the in-memory path gives,
    always as RGB; a file that does not decode is then refused when it is first read.
    ``&cache=DIR`` (implies ``lazy``) decodes every image once into a memory-mapped file in DIR,
    reused by every later load of the same files (:func:`~.stores.disk_cache`).
    """
    directory, options = path_and_options(root, "folder", FOLDER_LAYOUT, directory=True, allowed=("size", "lazy", "cache"))
    train_dir = directory / "train"
    classes = tuple(folder.name for folder in class_folders(train_dir, FOLDER_LAYOUT)[0])
    class_ids = {name: k for k, name in enumerate(classes)}
    splits = [_class_tree(train_dir, class_ids)]
    if (directory / "test").is_dir():
        splits.append(_class_tree(directory / "test", class_ids))
    warn_skipped([path for _, _, skipped in splits for path in skipped], directory)
    name = f"folder:{directory.resolve().name}"
    files = [[path.relative_to(directory).as_posix() for path in paths] for paths, _, _ in splits]
    sample_ids = files[0]
    if options.lazy or options.cache:
        size = required_size(options, f"folder:{directory}")
        images = [lazy_images(FileImages(directory, names, size, crop=False), options.cache, f"{file_slug(name)}-{split}")
                  for names, split in zip(files, ("train", "test"))]
        test = (images[1], splits[1][1]) if len(splits) > 1 else (None, None)
        return make_dataset(name, images[0], splits[0][1], *test, classes, source=str(directory), train_where=str(train_dir),
                            test_where=str(directory / "test"), sample_ids=sample_ids)
    reader = ImageReader(
        size_fix=f"Resize them, or pass folder:{directory}?size=N to resize every image to NxN.",
        resize_to=options.size,
    )
    raw = [RawSplit(reader.read(paths), labels.tolist(), lambda i, paths=paths: str(paths[i]), str(split_dir))
           for (paths, labels, _), split_dir in zip(splits, (train_dir, directory / "test"))]
    return make_raw_dataset(name, raw[0], raw[1] if len(raw) > 1 else None, classes, source=str(directory), sample_ids=sample_ids)


# --- Tiny-ImageNet-200 ---------------------------------------------------------------------------
TINY_IMAGENET_LAYOUT = (
    "the extracted 'tiny-imagenet-200' directory (wnids.txt, train/<wnid>/images/*.JPEG, "
    "val/images/*.JPEG, val/val_annotations.txt) or its parent"
)


def wordnet_names(words_path: Path, wnids: list[str], fix: str) -> tuple[str, ...]:
    """The first synonym of each wnid from a word list (``wnid<TAB or space>words, ...`` per line:
    Tiny-ImageNet's words.txt, ImageNet's LOC_synset_mapping.txt), or the wnids themselves without it."""
    if not words_path.exists():
        return tuple(wnids)
    words = {}
    for number, line in enumerate(text_lines(words_path, fix), start=1):
        fields = line.split(None, 1)
        if len(fields) < 2:
            raise InputError(f"{words_path}, line {number}: expected 'wnid<TAB>words', got {line!r}. {fix}")
        words[fields[0]] = fields[1].split(",")[0].strip()
    names = [words.get(wnid, wnid) for wnid in wnids]
    counts = Counter(names)
    # ImageNet reuses some words for two wnids (two kinds of 'crane'): keep every class name unique.
    return tuple(name if counts[name] == 1 else f"{name} ({wnid})" for name, wnid in zip(names, wnids))


def read_label_list(path: Path, class_ids: dict[str, int], fix: str, *, parse: Callable[[str], tuple[str, ...] | None],
                    expected: str, known: str) -> dict[str, int]:
    """``{image name: class id}`` from a list with one image per line; ``parse(line)`` gives
    ``(name, wnid)``, ``()`` for a line to skip (a header) or None for a line it cannot read."""
    labelled: dict[str, int] = {}
    for number, line in enumerate(text_lines(path, fix), start=1):
        fields = parse(line)
        where = f"{path}, line {number}"
        if fields is None:
            raise InputError(f"{where}: expected {expected}, got {line!r}. {fix}")
        if not fields:
            continue
        name, wnid = fields
        if wnid not in class_ids:
            raise InputError(f"{where}: wnid {wnid!r} is not {known}. {fix}")
        if name in labelled:
            raise InputError(f"{where}: {name} is listed twice. {fix}")
        labelled[name] = class_ids[wnid]
    if not labelled:
        raise InputError(f"{path}: lists no images. {fix}")
    return labelled


def listed_images(images_dir: Path, labelled: dict[str, int], list_path: Path, fix: str,
                  key: Callable[[Path], str] = lambda path: path.name) -> tuple[list[Path], np.ndarray, list[Path]]:
    """The images of a flat folder labelled by a list that must cover them exactly (``key`` names a
    file as the list does), their labels in the list's order, and the folder's non-image files."""
    images, others = list_images(images_dir, fix)
    present = {key(path): path for path in images}
    for name in labelled:
        if name not in present:
            raise InputError(f"{images_dir / name}: listed in {list_path} but missing. {fix}")
    for name, path in present.items():
        if name not in labelled:
            raise InputError(f"{path}: not listed in {list_path}, so it has no label; add it there or remove it")
    return [present[name] for name in labelled], np.fromiter(labelled.values(), dtype=np.int64, count=len(labelled)), others


def _tiny_val_split(val_dir: Path, class_ids: dict[str, int], fix: str) -> tuple[list[Path], np.ndarray, list[Path]]:
    """Validation image paths and labels from val_annotations.txt, which must cover val/images' images
    exactly, and the non-image files of val/images."""
    annotations = val_dir / "val_annotations.txt"
    labelled = read_label_list(annotations, class_ids, fix, parse=lambda line: tuple(line.split("\t")[:2]) if "\t" in line else None,
                               expected="'filename<TAB>wnid<TAB>box'", known="in wnids.txt")
    return listed_images(val_dir / "images", labelled, annotations, fix)


@register_source(
    "tiny-imagenet",
    "Tiny-ImageNet-200, 100k/10k 64x64 colour images, 200 classes (val used as test)",
    needs_path=True,
)
def load_tiny_imagenet(root: str | None = None) -> Dataset:
    """Tiny-ImageNet-200 from ``tiny-imagenet-200/`` or its parent; ``val/`` is the test split.

    Classes follow wnids.txt; their names are the first synonym in words.txt when it exists. The
    unlabelled ``test/`` folder is not read. Greyscale JPEGs in the set are decoded to RGB. Files that
    are not images are skipped with one warning. Sample IDs are the training paths relative to
    ``tiny-imagenet-200/`` (``train/<wnid>/images/<file>``).
    """
    directory = extracted_dir(root, "tiny-imagenet-200", "wnids.txt", TINY_IMAGENET_LAYOUT)
    fix = f"Re-extract tiny-imagenet-200.zip into {directory.parent}."
    wnids = text_lines(directory / "wnids.txt", fix)
    duplicated = [wnid for wnid, count in Counter(wnids).items() if count > 1]
    if duplicated:
        raise InputError(f"{directory / 'wnids.txt'}: {duplicated[0]} is listed twice. {fix}")
    class_ids = {wnid: k for k, wnid in enumerate(wnids)}
    train_dir = directory / "train"
    folders, others = class_folders(train_dir, TINY_IMAGENET_LAYOUT)
    for folder in folders:
        if folder.name not in class_ids:
            raise InputError(f"{folder}: {folder.name!r} is not in wnids.txt; add it there or remove the folder")
    train_paths, train_labels, train_skipped = labelled_images(
        [(train_dir / wnid / "images", label) for wnid, label in class_ids.items()], fix
    )
    test_paths, test_labels, test_skipped = _tiny_val_split(directory / "val", class_ids, fix)
    warn_skipped(others + train_skipped + test_skipped, directory)
    reader = ImageReader(size_fix=fix, reference=("every Tiny-ImageNet image", (64, 64)))
    train_images, _ = reader.read(train_paths)
    test_images, _ = reader.read(test_paths)
    return make_dataset(
        "tiny-imagenet",
        torch.from_numpy(train_images),
        train_labels,
        torch.from_numpy(test_images),
        test_labels,
        wordnet_names(directory / "words.txt", wnids, fix),
        source=str(directory),
        train_where=str(train_dir),
        test_where=str(directory / "val" / "val_annotations.txt"),
        fix=fix,
        sample_ids=[path.relative_to(directory).as_posix() for path in train_paths],
    )
