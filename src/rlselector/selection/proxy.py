"""The proxy stage: one short training run whose dynamics feed every dynamics-based method.

EL2N, GraNd, forgetting, CCS, Glister and MoSo all read the same
:class:`~rlselector.selection.dynamics.ProxyRecord`, produced once per (dataset fingerprint, model,
recipe, seed, mixed precision) by :func:`run_proxy` with the project's one training loop and kept in
the selection cache, or supplied by the user (``--dynamics FILE.npz``, read by
:func:`~rlselector.selection.dynamics.load_dynamics`). The recorder
(:class:`~rlselector.selection.observe.DynamicsRecorder`, the same observer a user's own loop feeds)
takes the per-sample dynamics from the training forward pass and logits/features from an eval pass
at the chosen ``record_epochs`` (see :mod:`rlselector.selection.dynamics` for what each field means).

The default proxy for a dataset (:func:`default_proxy_config`) is ResNet-18 at width 16 (width 8 for
images of 8 px or less), SGD 0.1, cosine, batch 128, augmentation on; 10 epochs up to 10,000
samples, 6 up to 100,000, 4 beyond (the proxy must stay a fraction of one target training); logits
and features at initialisation (epoch 0, for GraNd at initialisation), an early epoch (≈ 20 % of
training, for EL2N/GraNd), the middle and the last.

A cached run is one entry of :class:`~rlselector.selection.cache.ArtifactCache`; a run interrupted
with a cache resumes from its per-epoch checkpoint in ``<entry>.run/``. Runs are also kept in memory
for the life of the process, so several methods in one process (and the contract tests) train the
proxy once even without a cache.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..data.base import Dataset
from ..errors import InputError
from ..models import build_model
from ..train.distributed import DistributedContext
from ..train.loop import TrainConfig, seed_everything, train
from .cache import ArtifactCache, cache_key
from .dynamics import ProxyRecord, early_epoch, load_dynamics
from .observe import DynamicsRecorder

log = logging.getLogger(__name__)

PROXY_FORMAT = 2
"""Bumped when the record's content changes meaning; part of the cache key (2: prob_margin, lr, epoch 0)."""
MEMORY_CACHE_SIZE = 4
"""Proxy records kept in memory per process (least recently used dropped first)."""

_MEMORY: "OrderedDict[str, ProxyRecord]" = OrderedDict()


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProxyConfig:
    """The recipe of a proxy run. The run's seed is given to :func:`run_proxy`, not stored here."""

    model: str = "resnet18"
    """Registered model name of the proxy."""
    width: int = 16
    """Base width of the proxy model (64 = the paper's ResNet-18)."""
    recipe: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10))
    """Training recipe; its ``seed`` is replaced by the proxy seed."""
    record_epochs: tuple[int, ...] = (2, 5, 10)
    """Epochs (1-based; 0 = at initialisation) at whose end logits and features are recorded."""

    def validate(self) -> None:
        self.recipe.validate()
        epochs = tuple(self.record_epochs)
        if not epochs:
            raise InputError("ProxyConfig.record_epochs is empty; record logits/features at one epoch at least")
        bad = [e for e in epochs if not isinstance(e, (int, np.integer)) or not 0 <= e <= self.recipe.epochs]
        if bad:
            raise InputError(
                f"ProxyConfig.record_epochs {list(bad)} outside [0, {self.recipe.epochs}] "
                f"(the proxy trains {self.recipe.epochs} epochs; 0 = at initialisation)"
            )

    def identity(self, dataset: Dataset, seed: int, amp: str = "off") -> dict[str, Any]:
        """What a run's content depends on: dataset fingerprint, model, width, recipe, recorded epochs,
        seed and ``amp``, the run's mixed precision (it changes the numbers). The device does not
        enter: a run cached on a CPU is reused on a GPU and the other way round."""
        identity = {
            "format": PROXY_FORMAT,
            "fingerprint": dataset.fingerprint,
            "model": self.model,
            "width": int(self.width),
            "recipe": replace(self.recipe, seed=int(seed)).identity(),
            "record_epochs": sorted({int(e) for e in self.record_epochs}),
            "seed": int(seed),
        }
        return identity if amp == "off" else {**identity, "amp": amp}  # float32 runs keep the keys they always had

    def key(self, dataset: Dataset, seed: int, amp: str = "off") -> str:
        """Hex sha256 of :meth:`identity`: the cache key of the run."""
        return cache_key(self.identity(dataset, seed, amp))


def default_proxy_config(dataset: Dataset) -> ProxyConfig:
    """ResNet-18, width 16 (8 for ≤ 8 px images); 10 / 6 / 4 epochs for ≤ 10k / ≤ 100k / more samples;
    logits/features at initialisation (GraNd's epoch 0), early, in the middle and at the end."""
    n = len(dataset)
    epochs = 10 if n <= 10_000 else 6 if n <= 100_000 else 4
    return ProxyConfig(
        model="resnet18",
        width=8 if dataset.image_size <= 8 else 16,
        recipe=TrainConfig(epochs=epochs, batch_size=128, lr=0.1, schedule="cosine", augment=True),
        record_epochs=tuple(sorted({0, early_epoch(range(1, epochs + 1)), math.ceil(epochs / 2), epochs})),
    )


def resolve_config(dataset: Dataset, config: ProxyConfig | None) -> ProxyConfig:
    if config is None:
        return default_proxy_config(dataset)
    if not isinstance(config, ProxyConfig):
        raise InputError(f"proxy_config must be a ProxyConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def cache_path(cache_dir: str | Path, dataset: Dataset, config: ProxyConfig, seed: int, amp: str = "off") -> Path:
    """The run's cache entry: ``proxy-<dataset>-<model>-w<width>-e<epochs>-seed<seed>[-<amp>]-<key[:16]>.npz``."""
    label = f"{config.model}-w{config.width}-e{config.recipe.epochs}-seed{seed}"
    return ArtifactCache(Path(cache_dir), amp=amp).path("proxy", dataset, label, config.identity(dataset, seed))


def clear_memory_cache() -> None:
    """Forget the proxy records kept in memory (the disk cache is untouched)."""
    _MEMORY.clear()


def run_proxy(
    dataset: Dataset,
    config: ProxyConfig | None = None,
    *,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    runtime: Mapping[str, Any] | None = None,
) -> tuple[ProxyRecord, float, bool]:
    """Train the proxy (or reuse a cached run) and return ``(record, seconds, cached)``.

    ``seconds`` is the training time of the run (the stored one when ``cached``). The cache is
    looked up in memory, then in ``cache_dir``; a fresh run is written there atomically.
    ``runtime``: train()'s ``device``, ``amp``, ``channels_last``, ``compile`` and ``workers`` for
    the run (None = train()'s defaults); of them only ``amp`` is part of the cache key.
    """
    config = resolve_config(dataset, config)
    config.validate()
    runtime = dict(runtime or {})
    amp = runtime.get("amp", "off")
    key = config.key(dataset, seed, amp)
    labels = dataset.train.label_array
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        record = _MEMORY[key]
        return record, float(record.meta.get("seconds", 0.0)), True
    path = cache_path(cache_dir, dataset, config, seed, amp) if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            record = load_dynamics(path, len(dataset), labels=labels, num_classes=dataset.num_classes)
            if record.meta.get("key") != key:
                raise InputError(f"{path}: key {record.meta.get('key')!r} differs from {key!r}")
        except InputError as err:
            log.warning("ignoring unusable proxy cache file (%s); training again", err)
        else:
            record.source = f"proxy cache {path}"
            _remember(key, record)
            return record, float(record.meta.get("seconds", 0.0)), True

    record = _train_proxy(dataset, config, seed=seed, key=key, path=path, progress=progress, runtime=runtime)
    _remember(key, record)
    return record, float(record.meta["seconds"]), False


def _remember(key: str, record: ProxyRecord) -> None:
    _MEMORY[key] = record
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > MEMORY_CACHE_SIZE:
        _MEMORY.popitem(last=False)


def _train_proxy(
    dataset: Dataset, config: ProxyConfig, *, seed: int, key: str, path: Path | None, progress: bool, runtime: dict[str, Any]
) -> ProxyRecord:
    recipe = replace(config.recipe, seed=int(seed))
    labels = dataset.train.label_array
    recorder = DynamicsRecorder(labels, dataset.num_classes, config.record_epochs, eval_batch_size=recipe.eval_batch_size)
    seed_everything(int(seed))
    model = build_model(
        config.model, in_channels=dataset.in_channels, num_classes=dataset.num_classes,
        image_size=dataset.image_size, width=config.width,
    )
    run_dir = path.with_suffix(".run") if path is not None else None
    log.info("proxy: training %s (width %d) for %d epochs on %s, seed %d", config.model, config.width, recipe.epochs, dataset.name, seed)
    started = time.perf_counter()
    # no test evaluation: no method reads the proxy's accuracy, and it costs a pass over the test set
    result = train(model, dataset, recipe, hooks=[recorder], out_dir=run_dir, resume=True, progress=progress, evaluate_test=False,
                   **runtime)
    seconds = time.perf_counter() - started
    meta = {
        "key": key,
        "format": PROXY_FORMAT,
        "fingerprint": dataset.fingerprint,
        "dataset": dataset.name,
        "model": config.model,
        "width": config.width,
        "recipe": recipe.identity(),
        "record_epochs": sorted(set(int(e) for e in config.record_epochs)),
        "seed": int(seed),
        "amp": runtime.get("amp", "off"),
        "seconds": seconds,
        "train_seconds": result.seconds,
        "per_sample_dynamics": "training forward (augmented batch, train mode, before the step's update)",
        "logits_features": "no-grad eval-mode pass over the un-augmented training set at epoch end",
    }
    record = recorder.record(meta, lr=epoch_learning_rates(recipe, result.history), source="proxy")
    record.validate(n=len(dataset), labels=labels, num_classes=dataset.num_classes)
    if path is not None and DistributedContext.from_env().is_main:
        record.save(path)
        if run_dir is not None and run_dir.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        log.info("proxy: cached at %s", path)
    return record


def epoch_learning_rates(recipe: TrainConfig, history: list[dict[str, Any]]) -> list[float]:
    """The learning rate of each epoch's steps: the recipe's peak for the first; the training loop
    logs each epoch's ``lr`` after the schedule's step, i.e. the rate of the epoch after it."""
    return [float(recipe.lr), *(float(entry["lr"]) for entry in history[:-1])]


# --------------------------------------------------------------------------------------------
# seeds of further runs
# --------------------------------------------------------------------------------------------
def proxy_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th proxy run of a selection with ``seed``: run 0 is the shared proxy
    (``seed`` itself), further runs get seeds derived from (seed, index) that never collide with
    another selection seed's run 0."""
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0]) | (1 << 31)
