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
