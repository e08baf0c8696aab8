"""Shared pieces of the proxy-based methods' tests: a cheap proxy recipe and tiny hand-made datasets."""

from __future__ import annotations

import numpy as np
import torch

from rlselector.data.base import make_dataset
from rlselector.selection.proxy import ProxyConfig
from rlselector.train.loop import TrainConfig

TINY_PROXY = ProxyConfig(model="resnet18", width=8, recipe=TrainConfig(epochs=3, batch_size=64), record_epochs=(1, 2, 3))
"""Three epochs of a width-8 ResNet-18: seconds on digits[300]; trained once per test process (memory cache)."""


def toy_dataset(labels, num_classes: int | None = None):
    """A dataset of blank 8x8 images with the given labels: for hand-made dynamics, never trained on."""
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = num_classes or int(labels.max()) + 1
    images = torch.zeros((len(labels), 1, 8, 8), dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(len(labels), dtype=torch.uint8)  # distinct content, distinct fingerprint
    return make_dataset(
        "toy", images, labels, None, None, tuple(str(c) for c in range(num_classes)),
        source="test", train_where="toy", hflip=False,
    )
