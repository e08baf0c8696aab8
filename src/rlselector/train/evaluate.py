"""No-grad passes over a split: accuracy (top-1/top-5) and penultimate features."""

from __future__ import annotations

import logging
import warnings
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..data.base import Split
from ..data.loader import read_batches
from ..data.transforms import BatchTransform
from ..progress import step_progress

log = logging.getLogger(__name__)

EVAL_BATCH = {"cpu": 128}
"""Batch of an eval-mode pass by device type, where the caller gives none (other devices: 1,024). On a
CPU, batches of 128 run ResNet-18 width 16 1.6–1.7× faster than 1,024 (the activations stay in cache;
BENCHMARKS.md, "Eval-mode pass"); an accelerator wants large batches."""

FROZEN_MIN_BATCHES = 150
"""CPU passes of at least this many batches run a model that allows it (``frozen_cpu_inference``) as a
TorchScript copy frozen for inference. Freezing ResNet-18 width 16 costs ~1.3 CPU s and saves ~12 ms
a batch of 128 on an idle machine (1.18× over 30,000 images, 0.88× over 6,000: BENCHMARKS.md,
"Eval-mode pass"), so shorter passes would not earn it back."""

Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class FeaturesAndLogits(nn.Module):
    """One forward pass returning both (the training step's, so DDP sees a single module call; the
    eval pass's, so it can be traced as one module)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)
        return features, self.model.classifier(features)


def _frozen_forward(model: nn.Module, example: torch.Tensor, expected: tuple[torch.Tensor, torch.Tensor]) -> Forward | None:
    """A frozen, inference-optimised TorchScript copy of ``model`` (the original is untouched), or None
    where tracing fails or the copy's outputs on ``example`` differ from ``expected`` (the eager ones)
    beyond float rounding: the pass then stays eager."""
    try:
        with warnings.catch_warnings():  # trace warnings name shape checks that hold for every batch of a split
            warnings.simplefilter("ignore")
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(FeaturesAndLogits(model).eval(), example)))
            got = frozen(example)
    except Exception as error:  # noqa: BLE001 - any failure of the optional fast path falls back to the eager model
        log.debug("eval pass: no frozen copy of %s (%s); running eager", type(model).__name__, error)
        return None
    for mine, theirs in zip(got, expected):
        if not torch.allclose(mine, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max().clamp_min(1.0))):
            log.warning("eval pass: the frozen copy of %s differs from the model (max %.3g); running eager",
                        type(model).__name__, float((mine - theirs).abs().max()))
            return None
    return frozen


@torch.no_grad()
def forward_split(
    model: nn.Module, split: Split, transform: BatchTransform, *, batch_size: int | None = None, want_features: bool = True,
    progress: str | None = None, workers: int = 0, frozen: bool | None = None,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Features ``(N, d)`` (or None) and logits ``(N, classes)`` of every sample, in order, eval mode,
    as float32 numpy arrays. The pass runs where the model's weights lie (the GPU after a training
    there), in float32 even after a mixed-precision training: scores and accuracies are read from
    these numbers. ``batch_size``: None picks the device's (:data:`EVAL_BATCH`); ``progress``: the
    description of a progress bar over the pass (None: no bar); ``workers``: DataLoader processes
    reading the batches (0: this process); ``frozen``: whether a CPU pass runs a model that allows it
    (``frozen_cpu_inference``) as a frozen TorchScript copy, the same numbers to float rounding (None:
    when the pass has at least :data:`FROZEN_MIN_BATCHES` batches)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    batch_size = batch_size or EVAL_BATCH.get(device.type, 1024)
    batches = list(torch.arange(len(split)).split(batch_size))
    long_enough = len(batches) >= FROZEN_MIN_BATCHES if frozen is None else frozen
    may_freeze = device.type == "cpu" and getattr(model, "frozen_cpu_inference", False) and long_enough
    forward: Forward = FeaturesAndLogits(model)
    features, logits = [], []
    with step_progress(progress or "", len(split), enabled=progress is not None) as advance:
        for index, images, _ in read_batches(split, batches, workers=workers, pin_memory=device.type == "cuda",
                                             generator=torch.Generator()):
            x = transform(images.to(device, non_blocking=True))
            feats, out = forward(x)
            if may_freeze:  # from the first batch, checked against it
                forward, may_freeze = _frozen_forward(model, x, (feats, out)) or forward, False
            if want_features:
                features.append(feats.float().cpu().numpy())
            logits.append(out.float().cpu().numpy())
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
