"""No-grad passes over a split: accuracy (top-1/top-5) and penultimate features."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..data.base import Split
from ..data.loader import read_batches
from ..data.transforms import BatchTransform
from ..progress import step_progress


EVAL_BATCH = {"cpu": 128}
"""Batch of an eval-mode pass by device type, where the caller gives none (other devices: 1,024). On a
CPU, batches of 128 run ResNet-18 width 16 1.6–1.7× faster than 1,024 (the activations stay in cache;
BENCHMARKS.md, "Eval-mode pass"); an accelerator wants large batches."""


@torch.no_grad()
def forward_split(
    model: nn.Module, split: Split, transform: BatchTransform, *, batch_size: int | None = None, want_features: bool = True,
    progress: str | None = None, workers: int = 0,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Features ``(N, d)`` (or None) and logits ``(N, classes)`` of every sample, in order, eval mode,
    as float32 numpy arrays. The pass runs where the model's weights lie (the GPU after a training
    there), in float32 even after a mixed-precision training: scores and accuracies are read from
    these numbers. ``batch_size``: None picks the device's (:data:`EVAL_BATCH`); ``progress``: the
    description of a progress bar over the pass (None: no bar); ``workers``: DataLoader processes
    reading the batches (0: this process)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or EVAL_BATCH.get(device.type, 1024)
    batches = list(torch.arange(len(split)).split(batch_size))
    features, logits = [], []
    with step_progress(progress or "", len(split), enabled=progress is not None) as advance:
        for index, images, _ in read_batches(split, batches, workers=workers, pin_memory=device.type == "cuda",
                                             generator=torch.Generator()):
            feats = model.features(transform(images.to(device, non_blocking=True)))
            if want_features:
                features.append(feats.float().cpu().numpy())
            logits.append(model.classifier(feats).float().cpu().numpy())
            advance(len(index))
    model.train(was_training)
    return (np.concatenate(features) if want_features else None), np.concatenate(logits)


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, kth=k - 1, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def evaluate(model: nn.Module, split: Split, transform: BatchTransform, *, batch_size: int | None = None,
             progress: str | None = None, workers: int = 0) -> dict[str, float]:
    """Top-1 and top-5 accuracy in percent on ``split`` (``progress``: a bar's description, or None)."""
    _, logits = forward_split(model, split, transform, batch_size=batch_size, want_features=False, progress=progress, workers=workers)
    labels = split.label_array
    return {"top1": 100.0 * topk_accuracy(logits, labels, 1), "top5": 100.0 * topk_accuracy(logits, labels, 5)}
