"""Per-minibatch hooks: how a selector acts inside training without a second loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class BatchContext:
    """What one training step hands its hooks. Tensors are detached (no graph is kept).

    **Where they lie**: ``indices`` on the CPU (positions in the dataset, drawn by the sampler); every
    other tensor on the training device (the GPU when training there: ``labels``, ``logits``,
    ``losses``, ``features``, ``images``), with ``logits`` and ``features`` in float32 even under
    mixed precision. A hook that keeps rows in CPU memory or hands them to numpy moves them itself
    (``.cpu()``, best once per batch, or once per epoch from a buffer on the device): every such
    read waits for the device. On a replay of fixed features everything is on the CPU.

    **Under torchrun** every rank's hooks get the step's global batch: the rows of every rank,
    gathered in rank order (``images`` is then None, being this rank's alone).
    """

    epoch: int
    """0-based epoch."""
    step: int
    """Global step since the start of training (continues across a resume)."""
    indices: torch.Tensor
    """(B,) training-set indices of the samples in this batch."""
    labels: torch.Tensor
    logits: torch.Tensor | None
    """(B, classes) logits of the forward pass that produced this step's gradient (the network's
    outputs, one row per input, under another objective); None on a replay of fixed features."""
    losses: torch.Tensor | None
    """(B,) per-sample losses (cross-entropy by default); None on a replay of fixed features."""
    features: torch.Tensor
    """(B, d) penultimate features (the input of the model's last linear layer), or the fixed
    features of these samples on a replay."""
    model: nn.Module | None
    """The model being trained (unwrapped from DistributedDataParallel); None on a replay."""
    images: torch.Tensor | None = None
    """The normalised, augmented input batch, for hooks that need per-sample gradients."""


class TrainHook:
    """Base class: override what you need. State returned by :meth:`state_dict` is saved in every
    epoch checkpoint and handed back to :meth:`load_state_dict` on resume; it must hold tensors and
    plain values only (no numpy arrays), since checkpoints are loaded with ``weights_only=True``."""

    def on_train_start(self, model: nn.Module, dataset: Any) -> None:
        pass

    def on_epoch_start(self, epoch: int, model: nn.Module) -> None:
        pass

    def on_batch(self, batch: BatchContext) -> None:
        pass

    def on_epoch_end(self, epoch: int, model: nn.Module) -> dict[str, float] | None:
        """May return numbers to add to the epoch's log record."""
        return None

    def on_train_end(self, model: nn.Module) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
