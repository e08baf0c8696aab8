"""A small self-supervised encoder trained on the dataset itself, without labels (SimCLR-style).

Chen, Kornblith, Norouzi & Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020: two augmented views of each image, an encoder plus a projection MLP, and
the NT-Xent loss (each view must pick its partner among the 2B − 1 other views of the batch).

Used by the self-supervised prototypes method (Sorscher et al. 2022) when the user gives no
``--features``: its scores must not come from labels. The encoder is the project's ResNet-18 at a
small width; views are random crop (zero padding of a quarter of the image side), horizontal flip
(where the dataset allows it) and Gaussian pixel noise, from ``rlselector.data.transforms``.

Cost on CPU (one thread, measured on a shared 2-core machine): width 8 trains at ~110 images/s (two
views each) on 28×28 images, i.e. ~9 minutes per epoch over all 60,000 Fashion-MNIST images. The
default therefore trains 3 epochs on a seeded subset of at most 10,000 images (~4.5 minutes) and then
embeds every image (forward only, about a minute). This is far smaller than the paper's SwAV ImageNet
encoder: the embeddings are a cheap stand-in, and users with better embeddings
pass them with ``--features``. It trains through the one training loop (``rlselector.train``) with
Adam, a constant rate and NT-Xent as the loop's objective, so it has the same progress bar and, with
a work directory, a checkpoint per epoch that ``resume`` continues. Seeded: the same seed gives the
same embeddings; the caller's global torch random state is left untouched. With a cache directory the
embeddings are stored per (dataset fingerprint, recipe, seed, mixed precision) and reused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.base import Dataset
from ..data.transforms import BatchTransform, normalize, random_crop, random_hflip, to_float
from ..errors import InputError
from ..train import Objective, TrainConfig, forward_split, train
from .cache import ArtifactCache

log = logging.getLogger(__name__)

SSL_DIR = "ssl"
"""Sub-directory of a work directory holding the encoder's checkpoint and log."""


@dataclass(frozen=True)
class SSLConfig:
    """The recipe of the self-supervised encoder."""

    epochs: int = 3
    """Passes over the training images (or the ``max_samples`` subset), two views per image each."""
    width: int = 8
    """Base channel count of the ResNet-18 encoder (64 = the paper's ResNet; 8 keeps CPU runs short)."""
    batch_size: int = 256
    """Images per step; NT-Xent contrasts each view with the 2·batch − 1 others."""
    lr: float = 1e-3
    """Adam learning rate."""
    temperature: float = 0.5
    """NT-Xent temperature τ."""
    projection_dim: int = 64
    """Output size of the projection MLP (the loss lives there; embeddings are taken before it)."""
    noise_std: float = 0.1
    """Std of the Gaussian pixel noise added to each view (pixels in [0, 1])."""
    model: str = "resnet18"
    """Encoder architecture from the model registry."""
    max_samples: int = 10_000
    """Train on a seeded random subset of at most this many images (0 = all); every image is embedded."""

    def validate(self) -> None:
        if not isinstance(self.max_samples, int) or isinstance(self.max_samples, bool) or self.max_samples < 0:
            raise InputError(f"self-supervised encoder: max_samples must be an integer >= 0 (0 = all), got {self.max_samples!r}")
        for name in ("epochs", "width", "batch_size", "projection_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"self-supervised encoder: {name} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise InputError("self-supervised encoder: batch_size must be at least 2 (views are contrasted within a batch)")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise InputError(f"self-supervised encoder: {name} must be positive, got {getattr(self, name)!r}")
        if not self.noise_std >= 0:
            raise InputError(f"self-supervised encoder: noise_std must be >= 0, got {self.noise_std!r}")


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float, *, reduction: str = "mean") -> torch.Tensor:
    """NT-Xent loss of two batches of projections; row i of z1 and row i of z2 are the positive pair.
    ``reduction="none"``: the (2B,) loss of every view, z1's rows first."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    batch = z1.shape[0]
    logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # a view is not its own candidate
    targets = torch.cat([torch.arange(batch, 2 * batch), torch.arange(batch)]).to(z.device)
    return F.cross_entropy(logits, targets, reduction=reduction)


class _Contrastive(nn.Module):
    """Encoder plus projection head, shaped as the loop expects: ``features`` and a last layer
    (``classifier``, here the projection MLP whose outputs the loss contrasts)."""

    def __init__(self, encoder: nn.Module, feature_dim: int, projection_dim: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Sequential(nn.Linear(feature_dim, feature_dim), nn.ReLU(inplace=True), nn.Linear(feature_dim, projection_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder.features(x)


class _NTXent(Objective):
    """The loop's objective: both views of a batch in one forward pass, NT-Xent on their projections."""

    supervised = False

    def __init__(self, dataset: Dataset, config: SSLConfig) -> None:
        self.dataset, self.config, self.stats = dataset, config, dataset.channel_stats

    def inputs(self, images: torch.Tensor, transform: BatchTransform, generator: torch.Generator) -> torch.Tensor:
        return torch.cat([_view(images, self.dataset, self.config, self.stats, generator) for _ in range(2)])

    def losses(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        batch = len(labels)
        per_view = nt_xent(outputs[:batch], outputs[batch:], self.config.temperature, reduction="none")
        return per_view.view(2, batch).mean(0)  # per sample: the mean over its two views; their mean is NT-Xent


def _view(images: torch.Tensor, dataset: Dataset, config: SSLConfig, stats, generator: torch.Generator) -> torch.Tensor:
    x = random_crop(to_float(images), max(1, dataset.image_size // 4), generator)
    if dataset.hflip:
        x = random_hflip(x, generator)
    if config.noise_std > 0:
        x = (x + config.noise_std * torch.randn(x.shape, generator=generator).to(x.device)).clamp_(0.0, 1.0)  # drawn on the CPU generator
    return normalize(x, *stats)


def train_encoder(
    dataset: Dataset, config: SSLConfig, *, seed: int, progress: bool = True, out_dir: Path | None = None, resume: bool = False,
    runtime: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Train the encoder with NT-Xent on ``dataset``'s training images (labels unused); with
    ``out_dir`` a checkpoint per epoch, continued by ``resume``. ``runtime``: train()'s ``device``,
    ``amp``, ``channels_last``, ``compile`` and ``workers`` (None = train()'s defaults)."""
    from ..models import build_model

    config.validate()
    pool = dataset
    if 0 < config.max_samples < len(dataset):
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[: config.max_samples].sort().values
        pool = dataset.subset(chosen.numpy(), tag=f"ssl-{config.max_samples}")
    recipe = TrainConfig(
        epochs=config.epochs, batch_size=min(config.batch_size, len(pool)), lr=config.lr, weight_decay=0.0, schedule="constant",
        augment=False, seed=seed, optimizer="adam",
    )
    with torch.random.fork_rng(devices=[]):  # the caller's torch random state stays as it was
        torch.manual_seed(seed)
        encoder = build_model(config.model, in_channels=dataset.in_channels, num_classes=2, image_size=dataset.image_size, width=config.width)
        net = _Contrastive(encoder, encoder.feature_dim, config.projection_dim)
        started = time.perf_counter()
        train(net, pool, recipe, objective=_NTXent(dataset, config), out_dir=out_dir, resume=resume, progress=progress, evaluate_test=False,
              **(runtime or {}))
    log.info("self-supervised encoder trained in %.1f s", time.perf_counter() - started)
    return encoder


def embed(encoder: nn.Module, dataset: Dataset) -> np.ndarray:
    """Encoder features of every training image (no augmentation), float32 (N, feature_dim)."""
    features, _ = forward_split(encoder, dataset.train, BatchTransform.for_dataset(dataset, augment=False))
    return np.ascontiguousarray(features, dtype=np.float32)


def ssl_embeddings(
    dataset: Dataset,
    config: SSLConfig,
    *,
    seed: int,
    progress: bool = True,
    cache_dir: Path | None = None,
    workdir: Path | None = None,
    resume: bool = False,
    runtime: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, float, bool]:
    """``(embeddings, seconds, cached)``: train (or reuse from ``cache_dir``) and embed; ``seconds`` is
    the training time, the stored one when ``cached``. With ``workdir`` the training checkpoints in
    its ``ssl`` folder and ``resume`` continues an interrupted one. ``runtime``: the encoder's train()
    keywords (see :func:`train_encoder`); its ``amp`` is part of the cache key, its device is not."""
    config.validate()
    cache = ArtifactCache(Path(cache_dir), amp=(runtime or {}).get("amp", "off")) if cache_dir is not None else None
    entry = cache.path("ssl-embeddings", dataset, f"seed{seed}", [dataset.fingerprint, asdict(config), seed]) if cache else None
    stored = cache.load(entry) if cache else None
    if stored is not None:
        return stored["features"], float(stored["seconds"]), True
    started = time.perf_counter()
    out_dir = Path(workdir) / SSL_DIR if workdir is not None else None
    encoder = train_encoder(dataset, config, seed=seed, progress=progress, out_dir=out_dir, resume=resume, runtime=runtime)
    features = embed(encoder, dataset)
    seconds = time.perf_counter() - started
    if cache:
        cache.store(entry, features=features, seconds=np.float64(seconds))
    return features, seconds, False
