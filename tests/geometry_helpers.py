"""Small inputs shared by the geometry methods' tests (herding, k-center, Moderate-DS, prototypes, D2,
CG-score): a toy dataset whose samples are only labels, and fixed features for the digits contract runs."""

from __future__ import annotations

import numpy as np
import torch

from rlselector import load_dataset
from rlselector.data.base import Dataset, make_dataset


def toy_dataset(labels, num_classes: int | None = None) -> Dataset:
    """A dataset of 1×1 grey images with these labels: the methods under test only read ``features=``."""
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    images = torch.zeros((len(labels), 1, 1, 1), dtype=torch.uint8)
    return make_dataset(
        "toy", images, labels, None, None, [f"c{k}" for k in range(num_classes)], source="test", train_where="toy"
    )


def digits_features(limit: int = 300, seed: int = 0) -> np.ndarray:
    """The contract's digits subset as features: its 8×8 pixels in [0, 1], (limit, 64) float32."""
    data = load_dataset("digits", limit=limit, seed=seed)
    return (data.train.images.reshape(len(data), -1).float() / 255.0).numpy()
