"""Batch tensor transforms on torch alone: normalisation, random crop with padding, horizontal flip.

They act on whole uint8/float batches at once (fast on CPU) and draw randomness only from the
``torch.Generator`` they are given, so a seed fixes every augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` → float ``[0, 1]``."""
    return images.float().div_(255.0)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    shape = (1, -1, 1, 1)
    return (images - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and crop back to the original size at a random offset per image."""
    if padding <= 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    rows = (top[:, None] + torch.arange(height))[:, None, :, None]  # (B, 1, H, 1)
    cols = (left[:, None] + torch.arange(width))[:, None, None, :]  # (B, 1, 1, W)
    batch_index = torch.arange(batch)[:, None, None, None]
    channel_index = torch.arange(images.shape[1])[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(images.shape[0], generator=generator) < 0.5
    out = images.clone()
    out[flip] = images[flip].flip(-1)
    return out


@dataclass(frozen=True)
class BatchTransform:
    """What the training loop applies to every batch: augmentation (train only), then normalisation."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    """Pixels of zero padding for the random crop; 0 disables it."""
    hflip: bool = False
    """Random horizontal flips (off for digits, where a mirrored digit is another symbol)."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = to_float(images)
        if generator is not None:
            x = random_crop(x, self.crop_padding, generator)
            if self.hflip:
                x = random_hflip(x, generator)
        return normalize(x, self.mean, self.std)

    @classmethod
    def for_dataset(cls, dataset, *, augment: bool) -> "BatchTransform":
        mean, std = dataset.channel_stats
        padding = max(1, dataset.image_size // 8) if augment else 0
        return cls(mean=mean, std=std, crop_padding=padding, hflip=augment and dataset.hflip)
