"""torchrun plumbing: one process per rank, each on its own GPU (``cuda:LOCAL_RANK``) with NCCL, or
on the CPU with gloo; only rank 0 writes.

Selection under torchrun: every rank's hooks see the **global** batch of each step (all ranks'
rows, gathered by :func:`gather_batch`), so the per-sample records, the feature bank and the agent's
inputs are the same on every rank; work that is per class (the cover, the nearest neighbours) is
split across ranks by :meth:`DistributedContext.owns` and summed back with
:meth:`DistributedContext.sum_`.
"""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass, replace
from datetime import timedelta

import torch
import torch.distributed as dist

from .device import resolve_device
from .hooks import BatchContext


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main rank writes checkpoints, logs and results."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def owns(self, position: int) -> bool:
        """Whether this rank computes the ``position``-th item of work split round-robin (one class of a cover)."""
        return position % self.world_size == self.rank

    def sum_(self, *tensors: torch.Tensor) -> None:
        """In place, each tensor summed over the ranks: with every rank's share written in its own
        rows and zeros elsewhere, every rank ends up with all of them."""
        if not self.enabled:
            return
        for tensor in tensors:
            shared = tensor.to(_wire_device())
            dist.all_reduce(shared)
            tensor.copy_(shared)

    def broadcast_(self, *tensors: torch.Tensor) -> None:
        """In place, rank 0's values on every rank (state that must not drift apart between ranks)."""
        if not self.enabled:
            return
        for tensor in tensors:
            shared = tensor.to(_wire_device())
            dist.broadcast(shared, src=0)
            tensor.copy_(shared)

    def agree(self, value: torch.Tensor) -> bool:
        """Whether ``value`` (a small tensor, the same shape on every rank) is equal on every rank."""
        if not self.enabled:
            return True
        parts = _gathered(value.detach().reshape(1, -1).double(), self.world_size)
        return bool((parts == parts[0]).all())

    @classmethod
    def current(cls) -> "DistributedContext":
        """The process group already joined (by :meth:`from_env`), else a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(rank=dist.get_rank(), world_size=dist.get_world_size())
        return cls()

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> "DistributedContext":
        """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK,
        ...): NCCL when this rank trains on ``device`` = a GPU (``resolve_device("auto")`` when None),
        gloo on the CPU. A group joined here is left (``destroy_process_group``) at interpreter exit: a
        gloo group still alive when the interpreter tears down can abort the process ("terminate called
        without an active exception", pytorch/pytorch#190489; the same handler pytorch/pytorch#179291 proposed)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        if not dist.is_initialized():
            device = device if device is not None else resolve_device("auto")
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            atexit.register(_leave_group)
        return cls.current()


LEAVE_TIMEOUT_S = 60
"""How long a rank leaving the group waits for the others at exit (gloo), so a dead peer cannot hang it."""


def _leave_group() -> None:
    """Destroy the process group if it is still there (the caller may have destroyed it already), once
    every gloo rank has got here: a rank that tears its connections down while a peer still talks to it can
    abort in gloo's threads at exit ("terminate called without an active exception", seen
    intermittently in the two-rank test). A peer that died is not waited for beyond the timeout."""
    if not dist.is_initialized():
        return
    if dist.get_backend() == "gloo":  # where the abort was seen; NCCL's exit is untouched (not run on a GPU)
        try:
            dist.monitored_barrier(timeout=timedelta(seconds=LEAVE_TIMEOUT_S))
        except RuntimeError:  # a peer already gone: leave anyway
            pass
    dist.destroy_process_group()


def _wire_device() -> torch.device:
    """Where collectives take their tensors: the rank's GPU under NCCL, the CPU under gloo."""
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def _gathered(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    """Every rank's ``tensor`` (the same shape on each), concatenated in rank order, on ``tensor``'s device."""
    local = tensor.contiguous().to(_wire_device())
    parts = [torch.empty_like(local) for _ in range(world_size)]
    dist.all_gather(parts, local)
    return torch.cat(parts).to(tensor.device)


def gather_batch(batch: BatchContext, ctx: DistributedContext) -> BatchContext:
    """The step's global batch: indices, labels, logits, losses and features of every rank, in rank
    order (the distributed sampler gives every rank the same batch sizes). ``images`` stay this
    rank's alone, so they are dropped (None): a hook needing inputs per sample reads them by index."""
    if not ctx.enabled:
        return batch

    def gather(tensor: torch.Tensor | None) -> torch.Tensor | None:
        return None if tensor is None else _gathered(tensor, ctx.world_size)

    return replace(batch, indices=gather(batch.indices), labels=gather(batch.labels), logits=gather(batch.logits),
                   losses=gather(batch.losses), features=gather(batch.features), images=None)
