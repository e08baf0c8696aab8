"""torchrun plumbing: one process per rank, each on its own GPU (``cuda:LOCAL_RANK``) with NCCL, or
on the CPU with gloo; only rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .device import resolve_device


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

    @classmethod
    def from_env(cls, device: torch.device | None = None) -> "DistributedContext":
        """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, LOCAL_RANK,
        ...): NCCL when this rank trains on ``device`` = a GPU (``resolve_device("auto")`` when None),
        gloo on the CPU."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        if not dist.is_initialized():
            device = device if device is not None else resolve_device("auto")
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size())
