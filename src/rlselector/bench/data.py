"""The grid's datasets: the training subset, a validation hold-out, a smaller test split, and label
noise with a recorded seed."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data import Dataset, Split, load_dataset
from ..errors import InputError


def load_grid_dataset(spec: str, *, root: str | None, limit: int | None, test_limit: int | None, seed: int) -> Dataset:
    """``load_dataset`` plus an optional seeded, class-stratified subset of the test split."""
    dataset = load_dataset(spec, root=root, limit=limit, seed=seed)
    if test_limit is not None:
        dataset = limit_test(dataset, test_limit, seed=seed)
    return dataset


def limit_test(dataset: Dataset, n: int, *, seed: int) -> Dataset:
    """The dataset with a seeded, class-stratified subset of ``n`` test samples (training split unchanged)."""
    from sklearn.model_selection import train_test_split

    if dataset.test is None:
        raise InputError(f"test_limit: dataset {dataset.name!r} has no test split")
    if n >= len(dataset.test):
        return dataset
    if n < dataset.num_classes:
        raise InputError(f"test_limit {n} is smaller than the number of classes ({dataset.num_classes})")
    kept, _ = train_test_split(np.arange(len(dataset.test)), train_size=n, stratify=dataset.test.label_array, random_state=seed)
    return replace(dataset, test=dataset.test.take(np.sort(kept)))


def carve_validation(dataset: Dataset, fraction: float, *, seed: int) -> tuple[Dataset, Split, np.ndarray]:
    """A seeded, class-stratified hold-out of ``round(fraction · N)`` training samples.

    Returns ``(the dataset without them, the hold-out as a split, its sorted training indices)``;
    the remaining training samples keep their order, the test split is unchanged.
    """
    from sklearn.model_selection import train_test_split

    if not 0.0 < fraction < 0.5:
        raise InputError(f"validation: the share held out must lie in (0, 0.5), got {fraction}")
    n = int(round(fraction * len(dataset)))
    counts = dataset.class_counts[dataset.class_counts > 0]
    if n < len(counts) or counts.min() < 2:
        raise InputError(f"validation {fraction:g}: {n} held-out samples of {dataset.name!r} cannot hold every one of its "
                         f"{len(counts)} classes (each class needs at least 2 training samples and the hold-out one per class); "
                         f"raise validation or limit")
    _, held = train_test_split(np.arange(len(dataset)), test_size=n, stratify=dataset.train.label_array, random_state=seed)
    held = np.sort(held)
    kept = np.setdiff1d(np.arange(len(dataset)), held)
    return dataset.subset(kept, tag=""), dataset.train.take(held), held


def flip_labels(labels: np.ndarray, rate: float, num_classes: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate · N)`` labels, each to another class drawn uniformly.

    The samples to flip are drawn without replacement with ``numpy.random.default_rng(seed)``;
    returns ``(noisy labels, sorted flipped indices)``.
    """
    if not 0.0 <= rate < 1.0:
        raise InputError(f"label noise must lie in [0, 1), got {rate}")
    if num_classes < 2 and rate > 0:
        raise InputError("label noise needs at least two classes")
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False))
    noisy = labels.copy()
    # an offset in [1, K-1] added modulo K is a uniform draw among the other K-1 classes
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, size=len(flipped))) % num_classes
    return noisy, flipped


def with_label_noise(dataset: Dataset, rate: float, *, seed: int) -> tuple[Dataset, np.ndarray]:
    """The dataset with ``rate`` of its training labels flipped (name ``<name>+noise<rate>``); and the
    flipped indices. The test split stays clean; the fingerprint changes with the labels."""
    if rate == 0.0:
        return dataset, np.zeros(0, dtype=np.int64)
    noisy, flipped = flip_labels(dataset.train.label_array, rate, dataset.num_classes, seed=seed)
    train = Split(images=dataset.train.images, labels=torch.from_numpy(noisy))
    return replace(dataset, train=train, name=f"{dataset.name}+noise{rate:g}", meta={**dataset.meta, "label_noise": {"rate": rate, "seed": seed, "flipped": len(flipped)}}), flipped
