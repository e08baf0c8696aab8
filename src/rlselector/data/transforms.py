"""Batch tensor transforms on torch alone: normalisation, random crop with padding, horizontal flip.

They act on whole uint8/float batches at once, on whichever device the batch lies (the GPU's when
training there), and draw randomness only from the CPU ``torch.Generator`` they are given: the draws
are the same on every device, so a seed fixes every augmentation wherever it runs. The few numbers
drawn per batch travel to the batch's device without blocking.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` → float ``[0, 1]``."""
    return images.float().div_(255.0)


def _to(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """CPU-drawn ``values`` on ``like``'s device (no wait: the copy is queued behind the work before it)."""
    return values.to(like.device, non_blocking=True)


def _channel_tensor(values: tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return _to(torch.tensor(values, dtype=like.dtype).view(1, -1, 1, 1), like)


def normalize(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    return (images - _channel_tensor(mean, images)) / _channel_tensor(std, images)


def random_crop(images: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and crop back to the original size at a random offset per image."""
    if padding <= 0:
        return images
    batch, channels, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    top = _to(torch.randint(0, 2 * padding + 1, (batch,), generator=generator), images)
    left = _to(torch.randint(0, 2 * padding + 1, (batch,), generator=generator), images)
    rows = (top[:, None] + torch.arange(height, device=device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (left[:, None] + torch.arange(width, device=device))[:, None, None, :]  # (B, 1, 1, W)
    batch_index = torch.arange(batch, device=device)[:, None, None, None]
    channel_index = torch.arange(channels, device=device)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2 (a select, not a masked copy: no device sync)."""
    flip = _to(torch.rand(images.shape[0], generator=generator) < 0.5, images)
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


@dataclass(frozen=True)
class BatchTransform:
    """What the training loop applies to every batch: augmentation (train only), then normalisation."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int = 0
    """Pixels of zero padding for the random crop; 0 disables it."""
    hflip: bool = False
    """Random horizontal flips (off for digits, where a mirrored digit is another symbol)."""
    _stats: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    """Mean and std as tensors, per device: made once, not copied to the GPU every step."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = to_float(images)
        if generator is not None:
            x = random_crop(x, self.crop_padding, generator)
            if self.hflip:
                x = random_hflip(x, generator)
        if x.device not in self._stats:
            self._stats[x.device] = (_channel_tensor(self.mean, x), _channel_tensor(self.std, x))
        mean, std = self._stats[x.device]
        return (x - mean) / std

    @classmethod
    def for_dataset(cls, dataset, *, augment: bool) -> "BatchTransform":
        mean, std = dataset.channel_stats
        padding = max(1, dataset.image_size // 8) if augment else 0
        return cls(mean=mean, std=std, crop_padding=padding, hflip=augment and dataset.hflip)
