"""torchrun plumbing: one process per rank, gloo on CPU, nccl on GPU; only rank 0 writes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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
    def from_env(cls) -> "DistributedContext":
        """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, ...)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
        return cls(rank=dist.get_rank(), world_size=dist.get_world_size())
