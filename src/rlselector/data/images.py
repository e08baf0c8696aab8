"""Pixels into uint8 arrays: listing a folder's images, decoding files, PIL images and tensors to one size.

Shared by the image-folder, Tiny-ImageNet and CSV sources and by :func:`~.torch_data.from_torch`
and :func:`~.hf.from_hf`. A file that does not decode, an image with more than 8 bits per pixel or
another size than the rest is refused by name; a file that is not an image is skipped, and the
sources warn once with the count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..progress import step_progress
from .files import visible_entries

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GREY_MODES = {"1", "L", "LA", "La"}


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_images(directory: Path, fix: str) -> tuple[list[Path], list[Path]]:
    """The image files of one folder, sorted, and its other files (to skip); a sub-folder, or no
    image at all, is refused."""
    if not directory.is_dir():
        raise InputError(f"{directory}: missing. {fix}")
    images, others = [], []
    for entry in visible_entries(directory):
        if entry.is_dir():
            raise InputError(f"{entry}: a sub-folder among the images; remove it or move it out of {directory}")
        (images if is_image_file(entry) else others).append(entry)
    if not images:
        raise InputError(f"{directory}: holds no images. {fix}")
    return images, others


def labelled_images(folders: Sequence[tuple[Path, int]], fix: str) -> tuple[list[Path], np.ndarray, list[Path]]:
    """The image files of each ``(folder, label)`` pair, in order, their labels, and the non-image files."""
    paths: list[Path] = []
    labels: list[int] = []
    others: list[Path] = []
    for folder, label in folders:
        files, skipped = list_images(folder, fix)
        paths += files
        labels += [label] * len(files)
        others += skipped
    return paths, np.asarray(labels, dtype=np.int64), others


def warn_skipped(others: Sequence[Path], root: Path) -> None:
    """One warning for every file of ``root`` that was skipped because it is not an image."""
    if others:
        shown = ", ".join(str(path.relative_to(root)) for path in others[:3]) + (", ..." if len(others) > 3 else "")
        log.warning(
            "%s: skipped %d file(s) that are not images (%s); images end in %s. Remove or move them to "
            "silence this warning", root, len(others), shown, ", ".join(IMAGE_SUFFIXES),
        )


def uint8_pixels(array: np.ndarray, where: str, fix: str) -> np.ndarray:
    """uint8 pixels from uint8, other integers in [0, 255] or floats in [0, 1] (scaled by 255, rounded)."""
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
            f"got {array.dtype} in [{low}, {high}]. {fix}"
        )
    return np.ascontiguousarray(array, dtype=np.uint8)


def pil_pixels(image: Image.Image, where: str, resize_to: int | None = None, *, crop: bool = False) -> tuple[np.ndarray, bool]:
    """RGB uint8 ``(3, H, W)`` pixels of a PIL image (alpha dropped, palettes as colour), and whether
    the image is single-channel. With ``resize_to`` the image becomes ``resize_to`` squared: stretched
    (bilinear), or with ``crop`` its shorter side resized to ``resize_to`` (bilinear) and the centre
    cut out, keeping the aspect ratio; an image of that size already is left as it is."""
    if image.mode in ("I", "F") or image.mode.startswith("I;"):
        raise InputError(
            f"{where}: {image.mode} image (more than 8 bits per pixel) would lose precision; "
            f"convert it to 8-bit PNG or JPEG"
        )
    rgb = image.convert("RGB")
    if resize_to and rgb.size != (resize_to, resize_to):
        if crop:
            width, height = rgb.size
            scale = resize_to / min(width, height)
            size = (max(resize_to, round(width * scale)), max(resize_to, round(height * scale)))
            left, top = (size[0] - resize_to) // 2, (size[1] - resize_to) // 2
            rgb = rgb.resize(size, Image.Resampling.BILINEAR).crop((left, top, left + resize_to, top + resize_to))
        else:
            rgb = rgb.resize((resize_to, resize_to), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1), image.mode in _GREY_MODES


def file_pixels(path: Path | BinaryIO, where: str, resize_to: int | None = None, *, crop: bool = False) -> tuple[np.ndarray, bool]:
    """:func:`pil_pixels` of an image file (a path or an open binary file), fully decoded: a truncated
    or corrupt file is refused here. With ``crop`` a JPEG is decoded at the smallest power-of-two
    reduction still at least ``resize_to`` on each side (its DCT scaling: several times faster on
    large photos, such as ImageNet's)."""
    try:
        with Image.open(path) as image:
            if crop and resize_to:
                image.draft(image.mode, (resize_to, resize_to))
            image.load()
            return pil_pixels(image, where, resize_to, crop=crop)
    except InputError:  # pil_pixels' own refusal (an InputError is a ValueError too)
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputError(
            f"{where}: cannot decode the image ({err}); it is corrupt, truncated or not an image. "
            f"Replace or remove it"
        ) from err


def any_pixels(image: Any, where: str, fix: str) -> tuple[np.ndarray, bool]:
    """RGB uint8 ``(3, H, W)`` pixels of a PIL image or of a ``(C, H, W)``/``(H, W)`` tensor or array
    (C = 1 or 3, pixels as :func:`uint8_pixels` takes them), and whether it is single-channel."""
    if isinstance(image, Image.Image):
        return pil_pixels(image, where)
    if isinstance(image, torch.Tensor):
        tensor = image.detach().cpu()
        image = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    if not isinstance(image, np.ndarray):
        raise InputError(f"{where}: the image is a {type(image).__name__}; expected a PIL image or a tensor. {fix}")
    array = image[None] if image.ndim == 2 else image
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise InputError(
            f"{where}: image of shape {tuple(image.shape)} is neither (C, H, W) with C = 1 or 3 nor (H, W); "
            f"channels come first (a (H, W, C) tensor needs .permute(2, 0, 1)). {fix}"
        )
    pixels = uint8_pixels(array, where, fix)
    grey = pixels.shape[0] == 1
    return (np.repeat(pixels, 3, axis=0) if grey else pixels), grey


@dataclass
class ImageReader:
    """Stacks images into uint8 ``(N, 3, H, W)`` arrays that all share one size."""

    size_fix: str
    """What to do when an image has another size than the reference."""
    resize_to: int | None = None
    """Resize every image file to this square size (bilinear) instead of requiring one size."""
    reference: tuple[str, tuple[int, int]] | None = None
    """``(what, (width, height))`` every image must match; the first image read sets it when None."""

    def read(self, paths: Sequence[Path], wheres: Sequence[str] | None = None) -> tuple[np.ndarray, bool]:
        """The image files (``paths`` must not be empty), and whether every one of them is single-channel.

        ``wheres`` name each file in messages (default: its path)."""
        wheres = [str(path) for path in paths] if wheres is None else wheres
        pixels = (file_pixels(path, where, self.resize_to) for path, where in zip(paths, wheres))
        return self.stack(len(paths), zip(wheres, pixels))

    def stack(
        self, count: int, items: Iterable[tuple[str, tuple[np.ndarray, bool]]], *, progress: str | None = None
    ) -> tuple[np.ndarray, bool]:
        """``count`` images from ``(where, (pixels, single-channel))`` items; a bar titled ``progress``
        counts them when given."""
        images: np.ndarray | None = None
        all_grey = True
        with step_progress(progress or "", count, enabled=progress is not None) as advance:
            for i, (where, (pixels, grey)) in enumerate(items):
                self._check_size(where, (pixels.shape[2], pixels.shape[1]))
                if images is None:  # allocate once the size is known: no list of arrays, no stacking copy
                    images = np.empty((count, *pixels.shape), dtype=np.uint8)
                images[i] = pixels
                all_grey &= grey
                advance(1)
        assert images is not None, "callers give at least one image"
        return images, all_grey

    def _check_size(self, where: str, size: tuple[int, int]) -> None:
        if self.reference is None:
            self.reference = (where, size)
            return
        what, expected = self.reference
        if size != expected:
            raise InputError(
                f"{where}: image is {size[0]}x{size[1]} but {what} is {expected[0]}x{expected[1]}; "
                f"all images must share one size. {self.size_fix}"
            )

