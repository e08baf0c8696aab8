"""Arrays from an ``.npz`` file (``npz:/path/file.npz``): images ``x``, labels ``y``, optional test split.

The archive is read without pickle (object arrays are refused), so a crafted file cannot run code.
"""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .base import Dataset, as_labels, make_dataset
from .files import require_path
from .images import uint8_pixels
from .registry import register_source

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
    return torch.from_numpy(uint8_pixels(array, where, NPZ_FIX))


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
    path = require_path(root, f"an .npz file. {NPZ_FIX}", directory=False)
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
    train_labels = as_labels(fields["y"], where=f"{path}: field 'y'", fix=NPZ_FIX)
    test_labels = as_labels(fields["y_test"], where=f"{path}: field 'y_test'", fix=NPZ_FIX) if has_test else None
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
