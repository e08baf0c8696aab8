"""Reading a split's batches, in a given order, in this process or in DataLoader workers.

A batch is one item: its index tensor is the key, and ``split.batch(index)`` (indexing a tensor, or
decoding files for a lazy :class:`~.base.ImageStore`) runs in a worker process. The order of the
batches is the caller's, so the batches are the same whatever the number of workers; the training
loop draws augmentation afterwards, in its own process, from the epoch's generator. The workers draw
nothing random themselves; their seeds (torch, numpy, random) still come from the ``generator``
given here, never from the global random state, which the training loop checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import DataLoader

from .base import Split


class _BatchReader(torch.utils.data.Dataset):
    """A split read a whole batch per item, keyed by the batch's index tensor."""

    def __init__(self, split: Split) -> None:
        self.split = split

    def __getitem__(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, labels = self.split.batch(index)
        return index, images, labels


def read_batches(split: Split, batches: Sequence[torch.Tensor], *, workers: int, pin_memory: bool,
                 generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(index, uint8 images, labels)`` of each batch in ``batches``, in that order, on the CPU
    (page-locked with ``pin_memory``, for a non-blocking copy to the GPU). With ``workers`` > 0 that
    many processes read ahead (two batches each); 0 reads in this process."""
    loader = DataLoader(
        _BatchReader(split), batch_size=None, sampler=batches, num_workers=workers, pin_memory=pin_memory,
        generator=generator, prefetch_factor=2 if workers else None,
    )
    return iter(loader)


THUMBNAIL_SIDE = 16
"""Largest side of an input thumbnail: 28×28 Fashion-MNIST becomes 14×14, 224×224 ImageNet 16×16
(768 numbers in colour), so the input's geometry stays small at any image size."""


@torch.no_grad()
def input_thumbnails(split: Split, *, side: int = THUMBNAIL_SIDE, batch_size: int = 512, workers: int = 0) -> torch.Tensor:
    """(N, c·h·w) float32: every sample's stored image (no augmentation, no normalisation), average-pooled
    to at most ``side`` × ``side`` per channel, in order. A model-free geometry: a copy of an image, exact
    or with pixel noise, lies next to its original here whatever a network has learnt (the pooling also
    averages the noise down), which a briefly trained network's features do not guarantee. At most
    768 numbers a sample (3 GB of float32 for ImageNet's 1.28 million)."""
    batches = list(torch.arange(len(split)).split(batch_size))
    rows = []
    for _, images, _ in read_batches(split, batches, workers=workers, pin_memory=False, generator=torch.Generator()):
        images = images.float()
        if images.dim() == 4:
            images = torch.nn.functional.adaptive_avg_pool2d(images, (min(side, images.shape[2]), min(side, images.shape[3])))
        rows.append(images.reshape(len(images), -1))
    return torch.cat(rows)
