"""Image files into uint8 arrays: listing a folder's images and decoding them to one size.

Shared by the image-folder and Tiny-ImageNet sources. A file that is not an image, does not decode,
has more than 8 bits per pixel or another size than the rest is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import InputError
from .files import visible_entries

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_GREY_MODES = {"1", "L", "LA", "La"}


def _is_high_bit_depth(mode: str) -> bool:
    return mode in ("I", "F") or mode.startswith("I;")


def list_images(directory: Path, fix: str) -> list[Path]:
    """The image files of one folder, sorted; anything else in it, or no image at all, is refused."""
    if not directory.is_dir():
        raise InputError(f"{directory}: missing. {fix}")
    images = []
    for entry in visible_entries(directory):
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


def labelled_images(folders: Sequence[tuple[Path, int]], fix: str) -> tuple[list[Path], np.ndarray]:
    """The image files of each ``(folder, label)`` pair, in order, and their labels."""
    paths: list[Path] = []
    labels: list[int] = []
    for folder, label in folders:
        files = list_images(folder, fix)
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
class ImageReader:
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
