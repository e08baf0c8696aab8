"""User data sources: CIFAR-10/100 pickles, image folders, Tiny-ImageNet-200 and ``.npz`` arrays.

Each source takes the path after ``name:`` (``cifar10:/data/cifar-10-batches-py``). Every reader
refuses bad input before any training starts with an :class:`InputError` naming the offending file
(or field) and the fix: nothing is silently dropped, clipped or repaired.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from .base import Dataset, make_dataset, validate_split
from .registry import register_source


# --- shared helpers ------------------------------------------------------------------------------
def _require_path(root: str | None, expected: str, *, directory: bool) -> Path:
    """The user's path; a missing one (or a file where a directory belongs) says what was expected."""
    if not root:
        raise InputError(f"no path given; expected {expected}")
    path = Path(root).expanduser()
    if path.is_dir() if directory else path.is_file():
        return path
    problem = "no such file or directory" if not path.exists() else ("not a directory" if directory else "not a file")
    raise InputError(f"{path}: {problem}; expected {expected}")


def _extracted_dir(root: str | None, folder_name: str, marker: str, expected: str) -> Path:
    """The extracted archive directory: ``root`` itself, or ``root/folder_name`` when root is its parent."""
    base = _require_path(root, expected, directory=True)
    for candidate in (base, base / folder_name):
        if (candidate / marker).is_file():
            return candidate
    raise InputError(f"{base}: no {marker} here nor in {base / folder_name}; expected {expected}")


def _as_labels(values: Any, *, where: str, fix: str) -> np.ndarray:
    """Labels as int64; floats, booleans or strings are refused rather than guessed at."""
    labels = np.asarray(values)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise InputError(
            f"{where}: labels must be a 1-D array of integers, got {labels.dtype} of shape {labels.shape}. {fix}"
        )
    return labels.astype(np.int64)


def _text_lines(path: Path, fix: str) -> list[str]:
    """The non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({err}). {fix}") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def _visible_entries(directory: Path) -> list[Path]:
    """Sorted entries of a directory; hidden ones ('.DS_Store', '.ipynb_checkpoints') are not data."""
    return sorted(entry for entry in directory.iterdir() if not entry.name.startswith("."))


# --- images ------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GREY_MODES = {"1", "L", "LA", "La"}


def _is_high_bit_depth(mode: str) -> bool:
    return mode in ("I", "F") or mode.startswith("I;")


def _list_images(directory: Path, fix: str) -> list[Path]:
    """The image files of one folder, sorted; anything else in it, or no image at all, is refused."""
    if not directory.is_dir():
        raise InputError(f"{directory}: missing. {fix}")
    images = []
    for entry in _visible_entries(directory):
        if entry.is_dir() or entry.suffix.lower() not in IMAGE_SUFFIXES:
            kind = "a sub-folder" if entry.is_dir() else "not an image file"
            raise InputError(
                f"{entry}: {kind} (images end in {', '.join(IMAGE_SUFFIXES)}); "
                f"remove it or move it out of {directory}"
            )
        images.append(entry)
    if not images:
        raise InputError(f"{directory}: holds no images. {fix}")
    return images


def _labelled_images(folders: Sequence[tuple[Path, int]], fix: str) -> tuple[list[Path], np.ndarray]:
    """The image files of each ``(folder, label)`` pair, in order, and their labels."""
    paths: list[Path] = []
    labels: list[int] = []
    for folder, label in folders:
        files = _list_images(folder, fix)
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def _open_rgb(path: Path) -> tuple[Image.Image, str]:
    """The fully decoded image as RGB, and its original mode."""
    try:
        with Image.open(path) as image:
            image.load()  # decode every pixel now: a truncated or corrupt file fails here, by name
            return image.convert("RGB"), image.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(
            f"{path}: cannot decode the image ({err}); it is corrupt, truncated or not an image. "
            f"Replace or remove it"
        ) from err


@dataclass
class _ImageReader:
    """Decodes image files into uint8 ``(N, 3, H, W)`` arrays that all share one size."""

    size_fix: str
    """What to do when an image has another size than the reference."""
    resize_to: int | None = None
    """Resize every image to this square size (bilinear) instead of requiring one size."""
    reference: tuple[str, tuple[int, int]] | None = None
    """``(what, (width, height))`` every image must match; the first image read sets it when None."""

    def read(self, paths: Sequence[Path]) -> tuple[np.ndarray, bool]:
        """The images (``paths`` must not be empty), and whether every one of them is single-channel."""
        images: np.ndarray | None = None
        all_grey = True
        for i, path in enumerate(paths):
            image, mode = _open_rgb(path)
            if _is_high_bit_depth(mode):
                raise InputError(
                    f"{path}: {mode} image (more than 8 bits per pixel) would lose precision; "
                    f"convert it to 8-bit PNG or JPEG"
                )
            if self.resize_to and image.size != (self.resize_to, self.resize_to):
                image = image.resize((self.resize_to, self.resize_to), Image.Resampling.BILINEAR)
            self._check_size(path, image.size)
            if images is None:  # allocate once the size is known: no list of arrays, no stacking copy
                images = np.empty((len(paths), 3, image.height, image.width), dtype=np.uint8)
            images[i] = np.asarray(image).transpose(2, 0, 1)
            all_grey &= mode in _GREY_MODES
        assert images is not None, "callers list at least one image"
        return images, all_grey

    def _check_size(self, path: Path, size: tuple[int, int]) -> None:
        if self.reference is None:
            self.reference = (str(path), size)
            return
        what, expected = self.reference
        if size != expected:
            raise InputError(
                f"{path}: image is {size[0]}x{size[1]} but {what} is {expected[0]}x{expected[1]}; "
                f"all images must share one size. {self.size_fix}"
            )


# --- CIFAR-10 / CIFAR-100 ----------------------------------------------------------------------
# A pickle can run arbitrary code when loaded; CIFAR batches only ever hold containers, bytes and
# numpy arrays, so nothing else is let through.
_PICKLE_GLOBALS = {
    ("_codecs", "encode"),  # bytes written with protocol 2 by Python 3
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # numpy 1 (the official files)
    ("numpy._core.multiarray", "_reconstruct"),  # numpy 2
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"),
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a data file never holds")
        return super().find_class(module, name)


def _load_pickle(path: Path, fix: str) -> Any:
    if not path.is_file():
        raise InputError(f"{path}: missing. {fix}")
    try:
        with open(path, "rb") as handle:
            return _ArrayUnpickler(handle, encoding="bytes").load()
    except Exception as err:  # a corrupt pickle can raise almost any exception type
        raise InputError(
            f"{path}: cannot unpickle ({type(err).__name__}: {err}); "
            f"the file is corrupt, truncated or not a data file. {fix}"
        ) from err


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
    batch = _load_pickle(path, fix)
    data = np.asarray(_pickle_field(batch, b"data", path, fix))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS:
        raise InputError(
            f"{path}: field 'data' must be uint8 rows of {_CIFAR_PIXELS} pixels, got {data.dtype} {data.shape}. {fix}"
        )
    labels = _as_labels(
        _pickle_field(batch, layout.labels_key, path, fix),
        where=f"{path}: field {layout.labels_key.decode()!r}",
        fix=fix,
    )
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32))  # each row is the R, G, then B 32x32 plane
    validate_split(images, labels, num_classes, where=str(path), fix=fix)
    return images, labels


def _load_cifar(root: str | None, layout: _CifarLayout) -> Dataset:
    directory = _extracted_dir(root, layout.folder, layout.meta_file, layout.expected)
    fix = f"Re-extract the {layout.title} python archive into {directory.parent}."
    meta_path = directory / layout.meta_file
    names = _pickle_field(_load_pickle(meta_path, fix), layout.names_key, meta_path, fix)
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


# --- image folder ------------------------------------------------------------------------------
FOLDER_LAYOUT = "root/train/<class>/<images> and optionally root/test/<class>/<images>"


def _parse_folder_spec(root: str | None) -> tuple[Path, int | None]:
    """Split ``/path?size=N`` into the directory and the requested square size."""
    path, separator, query = (root or "").rpartition("?")
    if not separator:
        return _require_path(root, FOLDER_LAYOUT, directory=True), None
    key, _, value = query.partition("=")
    if key != "size" or not value.isdigit() or int(value) < 1:
        raise InputError(f"folder:{root}: unknown option {query!r}; the only option is ?size=N (a positive integer)")
    return _require_path(path, FOLDER_LAYOUT, directory=True), int(value)


def _class_folders(split_dir: Path, expected: str) -> list[Path]:
    """The sub-folders of a split directory, one per class; a stray file among them is refused."""
    if not split_dir.is_dir():
        raise InputError(f"{split_dir}: missing; expected {expected}")
    folders = _visible_entries(split_dir)
    for entry in folders:
        if not entry.is_dir():
            raise InputError(
                f"{entry}: a file among the class folders of {split_dir}; move it into a class folder or remove it"
            )
    if not folders:
        raise InputError(f"{split_dir}: no class folders; expected {expected}")
    return folders


def _read_class_tree(
    split_dir: Path, class_ids: dict[str, int], reader: _ImageReader
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Images, labels and whether every image is single-channel, for one split of the tree."""
    folders = _class_folders(split_dir, FOLDER_LAYOUT)
    for folder in folders:
        if folder.name not in class_ids:
            raise InputError(
                f"{folder}: class {folder.name!r} has no training folder; the test classes must be a "
                f"subset of the training classes. Add it to train/ or remove it"
            )
    paths, labels = _labelled_images(
        [(folder, class_ids[folder.name]) for folder in folders], fix="Add images to this class folder or delete it."
    )
    images, all_grey = reader.read(paths)
    return images, labels, all_grey


@register_source(
    "folder",
    "an image-folder tree root/train/<class>/*.png|jpg (optional root/test/); folder:/path?size=N resizes",
    needs_path=True,
)
def load_folder(root: str | None = None) -> Dataset:
    """Images from ``root/train/<class>/`` and optionally ``root/test/<class>/``.

    Class names are the sorted training sub-folder names; the test split's class folders must be a
    subset of them. Images (.png, .jpg, .jpeg, .bmp, .gif, .webp; GIFs give their first frame) are
    decoded to RGB, or to one channel when every image is greyscale; alpha is dropped and palette
    images count as colour. All images must share one size, unless ``?size=N`` resizes every image to
    NxN (bilinear). Only ``train/`` and ``test/`` are read. Hidden entries (names starting with '.')
    are ignored; anything else that is not an image, an image that does not decode, or an empty class
    folder is refused.
    """
    directory, resize_to = _parse_folder_spec(root)
    train_dir = directory / "train"
    classes = tuple(folder.name for folder in _class_folders(train_dir, FOLDER_LAYOUT))
    class_ids = {name: k for k, name in enumerate(classes)}
    reader = _ImageReader(
        size_fix=f"Resize them, or pass folder:{directory}?size=N to resize every image to NxN.",
        resize_to=resize_to,
    )
    train_images, train_labels, train_grey = _read_class_tree(train_dir, class_ids, reader)
    test_dir = directory / "test"
    test_images = test_labels = None
    test_grey = True
    if test_dir.is_dir():
        test_images, test_labels, test_grey = _read_class_tree(test_dir, class_ids, reader)
    channels = 1 if train_grey and test_grey else 3

    def as_tensor(images: np.ndarray | None) -> torch.Tensor | None:
        return None if images is None else torch.from_numpy(np.ascontiguousarray(images[:, :channels]))

    return make_dataset(
        f"folder:{directory.resolve().name}",
        as_tensor(train_images),
        train_labels,
        as_tensor(test_images),
        test_labels,
        classes,
        source=str(directory),
        train_where=str(train_dir),
        test_where=str(test_dir),
    )


# --- Tiny-ImageNet-200 -------------------------------------------------------------------------
TINY_IMAGENET_LAYOUT = (
    "the extracted 'tiny-imagenet-200' directory (wnids.txt, train/<wnid>/images/*.JPEG, "
    "val/images/*.JPEG, val/val_annotations.txt) or its parent"
)


def _tiny_class_names(words_path: Path, wnids: list[str], fix: str) -> tuple[str, ...]:
    """The first synonym of each wnid from words.txt, or the wnids themselves without it."""
    if not words_path.exists():
        return tuple(wnids)
    words = {}
    for number, line in enumerate(_text_lines(words_path, fix), start=1):
        wnid, tab, synonyms = line.partition("\t")
        if not tab:
            raise InputError(f"{words_path}, line {number}: expected 'wnid<TAB>words', got {line!r}. {fix}")
        words[wnid] = synonyms.split(",")[0].strip()
    names = [words.get(wnid, wnid) for wnid in wnids]
    counts = Counter(names)
    # ImageNet reuses some words for two wnids (two kinds of 'crane'): keep every class name unique.
    return tuple(name if counts[name] == 1 else f"{name} ({wnid})" for name, wnid in zip(names, wnids))


def _tiny_val_split(val_dir: Path, class_ids: dict[str, int], fix: str) -> tuple[list[Path], np.ndarray]:
    """Validation image paths and labels from val_annotations.txt, which must cover val/images exactly."""
    annotations = val_dir / "val_annotations.txt"
    images_dir = val_dir / "images"
    labelled: dict[str, int] = {}
    for number, line in enumerate(_text_lines(annotations, fix), start=1):
        fields = line.split("\t")
        where = f"{annotations}, line {number}"
        if len(fields) < 2:
            raise InputError(f"{where}: expected 'filename<TAB>wnid<TAB>box', got {line!r}. {fix}")
        filename, wnid = fields[0], fields[1]
        if wnid not in class_ids:
            raise InputError(f"{where}: wnid {wnid!r} is not in wnids.txt. {fix}")
        if filename in labelled:
            raise InputError(f"{where}: {filename} is listed twice. {fix}")
        labelled[filename] = class_ids[wnid]
    if not labelled:
        raise InputError(f"{annotations}: lists no images. {fix}")
    present = {path.name: path for path in _list_images(images_dir, fix)}
    for filename in labelled:
        if filename not in present:
            raise InputError(f"{images_dir / filename}: listed in {annotations} but missing. {fix}")
    for filename, path in present.items():
        if filename not in labelled:
            raise InputError(f"{path}: not listed in {annotations}, so it has no label; add it there or remove it")
    return [images_dir / filename for filename in labelled], np.fromiter(labelled.values(), dtype=np.int64)


@register_source(
    "tiny-imagenet",
    "Tiny-ImageNet-200, 100k/10k 64x64 colour images, 200 classes (val used as test)",
    needs_path=True,
)
def load_tiny_imagenet(root: str | None = None) -> Dataset:
    """Tiny-ImageNet-200 from ``tiny-imagenet-200/`` or its parent; ``val/`` is the test split.

    Classes follow wnids.txt; their names are the first synonym in words.txt when it exists. The
    unlabelled ``test/`` folder is not read. Greyscale JPEGs in the set are decoded to RGB.
    """
    directory = _extracted_dir(root, "tiny-imagenet-200", "wnids.txt", TINY_IMAGENET_LAYOUT)
    fix = f"Re-extract tiny-imagenet-200.zip into {directory.parent}."
    wnids = _text_lines(directory / "wnids.txt", fix)
    duplicated = [wnid for wnid, count in Counter(wnids).items() if count > 1]
    if duplicated:
        raise InputError(f"{directory / 'wnids.txt'}: {duplicated[0]} is listed twice. {fix}")
    class_ids = {wnid: k for k, wnid in enumerate(wnids)}
    train_dir = directory / "train"
    for folder in _class_folders(train_dir, TINY_IMAGENET_LAYOUT):
        if folder.name not in class_ids:
            raise InputError(f"{folder}: {folder.name!r} is not in wnids.txt; add it there or remove the folder")
    train_paths, train_labels = _labelled_images(
        [(train_dir / wnid / "images", label) for wnid, label in class_ids.items()], fix
    )
    test_paths, test_labels = _tiny_val_split(directory / "val", class_ids, fix)
    reader = _ImageReader(size_fix=fix, reference=("every Tiny-ImageNet image", (64, 64)))
    train_images, _ = reader.read(train_paths)
    test_images, _ = reader.read(test_paths)
    return make_dataset(
        "tiny-imagenet",
        torch.from_numpy(train_images),
        train_labels,
        torch.from_numpy(test_images),
        test_labels,
        _tiny_class_names(directory / "words.txt", wnids, fix),
        source=str(directory),
        train_where=str(train_dir),
        test_where=str(directory / "val" / "val_annotations.txt"),
        fix=fix,
    )


# --- .npz arrays -------------------------------------------------------------------------------
NPZ_FIELDS = ("x", "y", "x_test", "y_test", "classes")
NPZ_FIX = "Save it with np.savez(path, x=images, y=labels), optionally with x_test, y_test and classes."


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        # Our own handle: np.load leaves its own open when the archive is corrupt. Object arrays
        # would need pickle, which can run code.
        with open(path, "rb") as handle:
            archive = np.load(handle, allow_pickle=False)
            if isinstance(archive, np.lib.npyio.NpzFile):
                with archive:
                    return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(
            f"{path}: cannot read ({err}); the file is corrupt, truncated, or holds object arrays "
            f"(store class names as np.array(names, dtype=str)). {NPZ_FIX}"
        ) from err
    raise InputError(f"{path}: a single .npy array, not an .npz archive. {NPZ_FIX}")


def _npz_images(array: np.ndarray, where: str) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` from ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` pixels.

    A 4-D array is channels-last when its last axis has size 1 or 3, else channels-first when its
    second axis has; when both fit (``(N, 3, 32, 3)``) channels-last wins, numpy's own convention.
    uint8 pixels are kept, other integers must lie in [0, 255], floats in [0, 1] (scaled by 255, rounded).
    """
    if array.ndim == 3:
        array = array[:, None]
    elif array.ndim == 4 and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    elif array.ndim != 4 or array.shape[1] not in (1, 3):
        raise InputError(
            f"{where}: images of shape {array.shape} are neither (N, H, W), (N, H, W, C) nor (N, C, H, W) "
            f"with C = 1 or 3. {NPZ_FIX}"
        )
    low, high = (array.min(), array.max()) if array.size else (0, 0)
    if array.dtype.kind == "f":
        if not (np.isfinite(array).all() and 0.0 <= low and high <= 1.0):
            raise InputError(
                f"{where}: float pixels must lie in [0, 1], found [{low}, {high}]; divide 0-255 values by "
                f"255 or save them as uint8"
            )
        array = np.rint(array * 255.0)
    elif array.dtype.kind not in "iu" or low < 0 or high > 255:
        raise InputError(
            f"{where}: pixels must be uint8, integers in [0, 255] or floats in [0, 1], "
            f"got {array.dtype} in [{low}, {high}]. {NPZ_FIX}"
        )
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.uint8))


def _npz_classes(values: np.ndarray, where: str) -> tuple[str, ...]:
    if values.ndim != 1 or values.dtype.kind not in "US":
        raise InputError(
            f"{where}: class names must be a 1-D string array, got {values.dtype} of shape {values.shape}. {NPZ_FIX}"
        )
    classes = tuple(name.decode() if isinstance(name, bytes) else str(name) for name in values.tolist())
    duplicated = [name for name, count in Counter(classes).items() if count > 1]
    if duplicated:
        raise InputError(f"{where}: class {duplicated[0]!r} is named twice; class names must be unique")
    return classes


@register_source("npz", "a .npz file: x, y (optional x_test, y_test, classes)", needs_path=True)
def load_npz(root: str | None = None) -> Dataset:
    """Arrays from an ``.npz`` file: ``x`` images and ``y`` integer labels, optionally ``x_test``,
    ``y_test`` and ``classes`` (string array; without it classes are named '0'..'K-1', K = the largest
    label + 1). See :func:`_npz_images` for the accepted image layouts and pixel types."""
    path = _require_path(root, f"an .npz file. {NPZ_FIX}", directory=False)
    fields = _read_npz(path)
    unknown = sorted(set(fields) - set(NPZ_FIELDS))
    if unknown:
        raise InputError(f"{path}: unknown field(s) {unknown}; the fields are {', '.join(NPZ_FIELDS)}. {NPZ_FIX}")
    for key in ("x", "y"):
        if key not in fields:
            raise InputError(f"{path}: missing field {key!r}. {NPZ_FIX}")
    if ("x_test" in fields) != ("y_test" in fields):
        present, absent = ("x_test", "y_test") if "x_test" in fields else ("y_test", "x_test")
        raise InputError(f"{path}: field {present!r} without {absent!r}; give both or neither. {NPZ_FIX}")
    has_test = "x_test" in fields
    train_labels = _as_labels(fields["y"], where=f"{path}: field 'y'", fix=NPZ_FIX)
    test_labels = _as_labels(fields["y_test"], where=f"{path}: field 'y_test'", fix=NPZ_FIX) if has_test else None
    if "classes" in fields:
        classes = _npz_classes(fields["classes"], f"{path}: field 'classes'")
        label_fix = f"y[i] is the class of x[i], an index into field 'classes' ({len(classes)} names)."
    else:
        largest = max(int(labels.max(initial=-1)) for labels in (train_labels, test_labels) if labels is not None)
        classes = tuple(str(k) for k in range(largest + 1))
        label_fix = "y[i] is the class of x[i], numbered 0..K-1 (add a 'classes' field to name them)."
    return make_dataset(
        f"npz:{path.name}",
        _npz_images(fields["x"], f"{path}: field 'x'"),
        train_labels,
        _npz_images(fields["x_test"], f"{path}: field 'x_test'") if has_test else None,
        test_labels,
        classes,
        source=str(path),
        train_where=f"{path}: fields 'x', 'y'",
        test_where=f"{path}: fields 'x_test', 'y_test'",
        fix=label_fix,
    )
