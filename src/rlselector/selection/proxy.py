"""The proxy stage: one short training run whose dynamics feed every score-based method.

EL2N, GraNd, forgetting, CCS, Glister and MoSo all read the same :class:`ProxyRecord`, produced
once per (dataset fingerprint, model, recipe, seed) by :func:`run_proxy` with the project's one
training loop and cached on disk, or supplied by the user (``--dynamics FILE.npz``, read by
:func:`load_dynamics`).

What the record holds (epochs are 1-based: epoch ``e`` is the ``e``-th pass; ``0`` is the model at
initialisation, recorded only when asked for):

- ``loss`` (E×N float32), ``correct`` (E×N bool), ``margin`` (E×N float32): per-sample cross-entropy,
  correctness and margin (assigned logit − largest other) **from the training forward pass** of
  epoch ``e`` (row ``e−1``), i.e. on the augmented batch, in train mode (batch-norm batch
  statistics), with the weights *before* that step's update. This is what Toneva et al.
  (forgetting) and Pleiss et al. (AUM) record; it costs no extra pass.
- ``logits[e]`` (N×C) and ``features[e]`` (N×d, the input of the last linear layer) at the chosen
  ``record_epochs``: a separate no-grad pass over the un-augmented training set in eval mode at the
  end of epoch ``e`` (:func:`~rlselector.train.forward_split`), so ``logits[e] = classifier(features[e])``
  exactly, as the last-layer gradient scores need.

The default proxy for a dataset (:func:`default_proxy_config`) is ResNet-18 at width 16 (width 8 for
images of 8 px or less), SGD 0.1, cosine, batch 128, augmentation on; 10 epochs up to 10,000
samples, 6 up to 100,000, 4 beyond (the proxy must stay a fraction of one target training); logits
and features at an early epoch (≈ 20 % of training, for EL2N/GraNd), the middle and the last.

The cache is one ``.npz`` per run, named with a hash of the key and written atomically; a run
interrupted with a ``cache_dir`` resumes from its per-epoch checkpoint in ``<name>.run/``.
Runs are also kept in memory for the life of the process, so several methods in one process
(and the contract tests) train the proxy once even without a ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import time
import zipfile
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from ..data.base import Dataset
from ..errors import InputError
from ..io import atomic_save_npz
from ..train.loop import TrainConfig
from . import scores

if TYPE_CHECKING:  # pragma: no cover
    from .method import SelectionContext

log = logging.getLogger(__name__)

PROXY_FORMAT = 1
"""Bumped when the record's content changes meaning; part of the cache key."""
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

    def key(self, dataset: Dataset, seed: int) -> str:
        """Hex sha256 of (dataset fingerprint, model, width, recipe, recorded epochs, seed)."""
        payload = {
            "format": PROXY_FORMAT,
            "fingerprint": dataset.fingerprint,
            "model": self.model,
            "width": int(self.width),
            "recipe": asdict(replace(self.recipe, seed=int(seed))),
            "record_epochs": sorted({int(e) for e in self.record_epochs}),
            "seed": int(seed),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=list).encode()).hexdigest()


def default_proxy_config(dataset: Dataset) -> ProxyConfig:
    """ResNet-18, width 16 (8 for ≤ 8 px images); 10 / 6 / 4 epochs for ≤ 10k / ≤ 100k / more samples."""
    n = len(dataset)
    epochs = 10 if n <= 10_000 else 6 if n <= 100_000 else 4
    return ProxyConfig(
        model="resnet18",
        width=8 if dataset.image_size <= 8 else 16,
        recipe=TrainConfig(epochs=epochs, batch_size=128, lr=0.1, schedule="cosine", augment=True),
        record_epochs=tuple(sorted({early_epoch(range(1, epochs + 1)), math.ceil(epochs / 2), epochs})),
    )


def resolve_config(dataset: Dataset, config: ProxyConfig | None) -> ProxyConfig:
    if config is None:
        return default_proxy_config(dataset)
    if not isinstance(config, ProxyConfig):
        raise InputError(f"proxy_config must be a ProxyConfig, got {type(config).__name__}")
    return config


def early_epoch(epochs: Iterable[int]) -> int:
    """The 'early in training' epoch among ``epochs``: ≈ 20 % of the last one, at least 1.

    EL2N and GraNd are computed early (Paul et al.: epoch 10–20 of 200); for a short proxy the
    first recorded epoch at or after 20 % of training is used (epoch 0 only if nothing else is).
    """
    epochs = sorted(set(int(e) for e in epochs))
    if not epochs:
        raise InputError("no epoch recorded")
    target = max(1, round(0.2 * epochs[-1]))
    later = [e for e in epochs if e >= target]
    return later[0] if later else epochs[-1]


# --------------------------------------------------------------------------------------------
# the record
# --------------------------------------------------------------------------------------------
@dataclass
class ProxyRecord:
    """Per-sample training dynamics of one proxy run (or of the user's ``--dynamics`` file).

    Arrays are read-only once validated: every method shares the same record.
    """

    loss: np.ndarray
    """(E, N) float32: cross-entropy of each sample in the training forward of each epoch."""
    correct: np.ndarray
    """(E, N) bool: whether that forward classified the sample correctly."""
    logits: dict[int, np.ndarray] = field(default_factory=dict)
    """epoch → (N, C) float32 eval-mode logits at the end of that epoch."""
    features: dict[int, np.ndarray] = field(default_factory=dict)
    """epoch → (N, d) float32 eval-mode penultimate features at the end of that epoch."""
    margin: np.ndarray | None = None
    """(E, N) float32: assigned logit minus the largest other logit in the training forward."""
    labels: np.ndarray | None = None
    """(N,) int64 labels the run trained on (checked against the dataset when given)."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Key, config, seed, dataset fingerprint, seconds, source."""
    source: str = "record"
    """Where the record came from (a file path, 'proxy' or 'record'), used in error messages."""

    def __post_init__(self) -> None:
        self.logits = {int(e): v for e, v in self.logits.items()}
        self.features = {int(e): v for e, v in self.features.items()}

    # --- shapes ---------------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(np.shape(self.loss)[1])

    @property
    def epochs(self) -> int:
        return int(np.shape(self.loss)[0])

    @property
    def logit_epochs(self) -> list[int]:
        return sorted(self.logits)

    @property
    def feature_epochs(self) -> list[int]:
        return sorted(self.features)

    @property
    def early_epoch(self) -> int:
        """The epoch EL2N and GraNd use by default (see :func:`early_epoch`)."""
        if not self.logits:
            raise InputError(f"{self.source}: no logits recorded (fields 'logits_<epoch>'); EL2N/GraNd need them")
        return early_epoch(self.logits)

    # --- access ---------------------------------------------------------------------------
    def logits_at(self, epoch: int | None = None) -> np.ndarray:
        """Logits at ``epoch`` (None = the last recorded one)."""
        return self._at(self.logits, "logits", epoch)

    def features_at(self, epoch: int | None = None) -> np.ndarray:
        """Penultimate features at ``epoch`` (None = the last recorded one)."""
        return self._at(self.features, "features", epoch)

    def _at(self, table: dict[int, np.ndarray], name: str, epoch: int | None) -> np.ndarray:
        if not table:
            raise InputError(
                f"{self.source}: no {name} recorded (fields '{name}_<epoch>'); record them in the proxy "
                f"(ProxyConfig.record_epochs) or add them to the dynamics file"
            )
        if epoch is None:
            epoch = max(table)
        if int(epoch) not in table:
            raise InputError(
                f"{self.source}: field '{name}_{epoch}' missing; {name} are recorded at epochs {sorted(table)}"
            )
        return table[int(epoch)]

    def forgetting_counts(self) -> np.ndarray:
        return scores.forgetting_counts(self.correct)

    def area_under_margin(self) -> np.ndarray:
        """AUM (Pleiss et al. 2020): the margin averaged over epochs; low = hard or mislabeled."""
        if self.margin is None:
            raise InputError(f"{self.source}: field 'margin' (E x N) missing; AUM needs the per-epoch training margin")
        return np.asarray(self.margin, dtype=np.float64).mean(axis=0)

    # --- validation -----------------------------------------------------------------------
    def validate(self, *, n: int | None = None, labels: np.ndarray | None = None, num_classes: int | None = None) -> "ProxyRecord":
        """Check shapes, sizes and finiteness; errors name the source and the field. Returns self."""
        where = self.source

        def fail(name: str, what: str) -> None:
            raise InputError(f"{where}: field '{name}' {what}")

        loss = np.asarray(self.loss)
        if loss.ndim != 2 or loss.shape[0] < 1 or loss.shape[1] < 1:
            fail("loss", f"must be 2-D (epochs E, samples N), got shape {loss.shape}")
        if not np.issubdtype(loss.dtype, np.number) or np.issubdtype(loss.dtype, np.complexfloating):
            fail("loss", f"must be float, got dtype {loss.dtype}")
        epochs, count = loss.shape
        if n is not None and count != n:
            fail(
                "loss",
                f"holds {count} samples per epoch but the training set has {n}; dynamics must cover every "
                f"training sample in dataset order (same --limit and seed)",
            )
        self._finite("loss", loss)
        correct = np.asarray(self.correct)
        if correct.shape != loss.shape:
            fail("correct", f"has shape {correct.shape} but 'loss' has {loss.shape}; both are (E, N)")
        if correct.dtype != bool:
            if not np.issubdtype(correct.dtype, np.number) or not np.isin(correct, (0, 1)).all():
                fail("correct", "must be bool or 0/1")
            correct = correct.astype(bool)
        self.loss, self.correct = _frozen(loss.astype(np.float32, copy=False)), _frozen(correct)
        if self.margin is not None:
            margin = np.asarray(self.margin)
            if margin.shape != loss.shape:
                fail("margin", f"has shape {margin.shape} but 'loss' has {loss.shape}; both are (E, N)")
            self._finite("margin", margin)
            self.margin = _frozen(margin.astype(np.float32, copy=False))
        if self.labels is not None:
            own = np.asarray(self.labels)
            if own.shape != (count,) or not np.issubdtype(own.dtype, np.integer):
                fail("labels", f"must be (N,) = ({count},) integers, got shape {own.shape} dtype {own.dtype}")
            if labels is not None and not np.array_equal(own, labels):
                wrong = int((own != labels).sum())
                fail("labels", f"disagree with the dataset's labels on {wrong} samples; the dynamics belong to other data or another order")
            self.labels = _frozen(own.astype(np.int64, copy=False))
        for name, table in (("logits", self.logits), ("features", self.features)):
            for epoch, values in sorted(table.items()):
                field_name = f"{name}_{epoch}"
                values = np.asarray(values)
                if not 0 <= epoch <= epochs:
                    fail(field_name, f"is for epoch {epoch} but 'loss' covers epochs 1..{epochs} (0 = initialisation)")
                if values.ndim != 2 or values.shape[0] != count:
                    fail(field_name, f"must be ({count}, ...) (one row per sample), got shape {values.shape}")
                if name == "logits" and num_classes is not None and values.shape[1] != num_classes:
                    fail(field_name, f"has {values.shape[1]} columns but the dataset has {num_classes} classes")
                if not np.issubdtype(values.dtype, np.floating):
                    fail(field_name, f"must be float, got dtype {values.dtype}")
                self._finite(field_name, values)
                table[epoch] = _frozen(values.astype(np.float32, copy=False))
        return self

    def _finite(self, name: str, values: np.ndarray) -> None:
        values = np.asarray(values)
        if not np.issubdtype(values.dtype, np.inexact):
            return
        bad = ~np.isfinite(values)
        if bad.any():
            where = np.argwhere(bad)[0].tolist()
            raise InputError(f"{self.source}: field '{name}' holds {int(bad.sum())} NaN/inf values (first at {where}); clean them")

    # --- file format ------------------------------------------------------------------------
    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"loss": np.asarray(self.loss), "correct": np.asarray(self.correct)}
        if self.margin is not None:
            out["margin"] = np.asarray(self.margin)
        if self.labels is not None:
            out["labels"] = np.asarray(self.labels)
        for epoch, values in self.logits.items():
            out[f"logits_{epoch}"] = np.asarray(values)
        for epoch, values in self.features.items():
            out[f"features_{epoch}"] = np.asarray(values)
        out["meta"] = np.array(json.dumps(self.meta, sort_keys=True, default=str))
        return out

    def save(self, path: str | Path) -> Path:
        """Write the record as one ``.npz`` (the ``--dynamics`` schema), atomically."""
        return atomic_save_npz(path, **self.arrays())


def _frozen(values: np.ndarray) -> np.ndarray:
    """A read-only view (the caller's own array keeps its flags)."""
    view = np.asarray(values).view()
    view.flags.writeable = False
    return view


DYNAMICS_SCHEMA = """\
a .npz holding 'loss' (E x N float: per-sample loss in each of E epochs), 'correct' (E x N bool or 0/1),
optionally 'margin' (E x N float), 'labels' (N int), 'logits_<epoch>' (N x C float) and
'features_<epoch>' (N x d float) for epochs in 0..E, and 'meta' (a JSON string)"""
_FIELD = re.compile(r"^(logits|features)_(\d+)$")


def load_dynamics(
    path: str | Path, n: int | None = None, *, labels: np.ndarray | None = None, num_classes: int | None = None
) -> ProxyRecord:
    """Read user-supplied training dynamics (``--dynamics FILE.npz``); see :data:`DYNAMICS_SCHEMA`.

    ``n`` (and ``labels``, ``num_classes`` when given) are checked against the file; every error
    names the file and the field. A proxy cache file is itself a valid dynamics file.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: dynamics file not found; give {DYNAMICS_SCHEMA}")
    arrays: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for name in data.files:
                try:
                    arrays[name] = data[name]
                except ValueError as err:  # object arrays need pickle, which is never enabled
                    raise InputError(f"{path}: field '{name}' is not a plain numeric array ({err}); save it with numpy, not as objects") from err
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{path}: not a readable .npz ({err}); give {DYNAMICS_SCHEMA}") from err
    for required in ("loss", "correct"):
        if required not in arrays:
            raise InputError(f"{path}: field '{required}' missing; give {DYNAMICS_SCHEMA}")
    tables: dict[str, dict[int, np.ndarray]] = {"logits": {}, "features": {}}
    unknown = []
    for name, values in arrays.items():
        match = _FIELD.match(name)
        if match:
            tables[match.group(1)][int(match.group(2))] = values
        elif name not in ("loss", "correct", "margin", "labels", "meta"):
            unknown.append(name)
    if unknown:
        raise InputError(f"{path}: unknown field(s) {sorted(unknown)}; expected {DYNAMICS_SCHEMA}")
    meta: dict[str, Any] = {}
    if "meta" in arrays:
        try:
            meta = json.loads(str(arrays["meta"]))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}: field 'meta' is not a JSON string ({err})") from err
    record = ProxyRecord(
        loss=arrays["loss"],
        correct=arrays["correct"],
        logits=tables["logits"],
        features=tables["features"],
        margin=arrays.get("margin"),
        labels=arrays.get("labels"),
        meta=meta,
        source=str(path),
    )
    return record.validate(n=n, labels=labels, num_classes=num_classes)


# --------------------------------------------------------------------------------------------
# recording hook
# --------------------------------------------------------------------------------------------
def _make_recorder(n: int, epochs: int, record_epochs: Iterable[int], eval_batch_size: int):
    """A TrainHook recording per-sample dynamics (imported lazily: it pulls in torch)."""
    import torch

    from ..data.transforms import BatchTransform
    from ..train.evaluate import forward_split
    from ..train.hooks import TrainHook

    class DynamicsRecorder(TrainHook):
        """Sums per epoch and sample (a sample seen twice in one epoch, as the distributed sampler's
        padding does, is averaged); logits/features by a no-grad eval pass at chosen epoch ends."""

        def __init__(self) -> None:
            self.record_epochs = sorted(set(int(e) for e in record_epochs))
            self.loss_sum = np.zeros((epochs, n), dtype=np.float64)
            self.margin_sum = np.zeros((epochs, n), dtype=np.float64)
            self.correct_sum = np.zeros((epochs, n), dtype=np.int32)
            self.seen = np.zeros((epochs, n), dtype=np.int32)
            self.logits: dict[int, np.ndarray] = {}
            self.features: dict[int, np.ndarray] = {}
            self.split = None
            self.transform = None

        def on_train_start(self, model, dataset) -> None:
            self.split = dataset.train
            self.transform = BatchTransform.for_dataset(dataset, augment=False)
            if 0 in self.record_epochs and 0 not in self.logits:
                self._snapshot(0, model)

        def on_batch(self, batch) -> None:
            idx = batch.indices.numpy()
            e = batch.epoch
            logits = batch.logits.float()
            labels = batch.labels
            assigned = logits.gather(1, labels[:, None])[:, 0]
            others = logits.scatter(1, labels[:, None], float("-inf")).max(dim=1).values
            np.add.at(self.loss_sum[e], idx, batch.losses.double().numpy())
            np.add.at(self.margin_sum[e], idx, (assigned - others).double().numpy())
            np.add.at(self.correct_sum[e], idx, (logits.argmax(1) == labels).int().numpy())
            np.add.at(self.seen[e], idx, 1)

        def on_epoch_end(self, epoch: int, model):
            if epoch + 1 in self.record_epochs:
                self._snapshot(epoch + 1, model)
            return None

        def on_train_end(self, model) -> None:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                for name in ("loss_sum", "margin_sum", "correct_sum", "seen"):
                    tensor = torch.from_numpy(getattr(self, name))
                    dist.all_reduce(tensor)
                    setattr(self, name, tensor.numpy())

        def _snapshot(self, epoch: int, model) -> None:
            feats, logits = forward_split(model, self.split, self.transform, batch_size=eval_batch_size)
            self.features[epoch], self.logits[epoch] = feats.astype(np.float32), logits.astype(np.float32)

        def state_dict(self) -> dict[str, Any]:
            return {
                "loss_sum": self.loss_sum, "margin_sum": self.margin_sum, "correct_sum": self.correct_sum,
                "seen": self.seen, "logits": dict(self.logits), "features": dict(self.features),
            }

        def load_state_dict(self, state: dict[str, Any]) -> None:
            for name in ("loss_sum", "margin_sum", "correct_sum", "seen"):
                setattr(self, name, np.array(state[name]))
            self.logits, self.features = dict(state["logits"]), dict(state["features"])

        def record(self, labels: np.ndarray, meta: dict[str, Any]) -> ProxyRecord:
            if (self.seen == 0).any():
                epoch, sample = np.argwhere(self.seen == 0)[0]
                raise RuntimeError(f"proxy run: sample {sample} was never seen in epoch {epoch + 1}")
            return ProxyRecord(
                loss=(self.loss_sum / self.seen).astype(np.float32),
                correct=self.correct_sum * 2 >= self.seen,
                margin=(self.margin_sum / self.seen).astype(np.float32),
                logits=self.logits,
                features=self.features,
                labels=np.asarray(labels, dtype=np.int64),
                meta=meta,
                source="proxy",
            )

    return DynamicsRecorder()


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def cache_path(cache_dir: str | Path, dataset: Dataset, config: ProxyConfig, seed: int) -> Path:
    """``proxy-<dataset>-<model>-w<width>-e<epochs>-seed<seed>-<key[:16]>.npz`` in ``cache_dir``."""
    key = config.key(dataset, seed)
    return Path(cache_dir) / f"proxy-{dataset.file_slug}-{config.model}-w{config.width}-e{config.recipe.epochs}-seed{seed}-{key[:16]}.npz"


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
) -> tuple[ProxyRecord, float, bool]:
    """Train the proxy (or reuse a cached run) and return ``(record, seconds, cached)``.

    ``seconds`` is the training time of the run (the stored one when ``cached``). The cache is
    looked up in memory, then in ``cache_dir``; a fresh run is written there atomically.
    """
    config = resolve_config(dataset, config)
    config.validate()
    key = config.key(dataset, seed)
    labels = dataset.train.label_array
    if key in _MEMORY:
        _MEMORY.move_to_end(key)
        record = _MEMORY[key]
        return record, float(record.meta.get("seconds", 0.0)), True
    path = cache_path(cache_dir, dataset, config, seed) if cache_dir is not None else None
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

    record = _train_proxy(dataset, config, seed=seed, key=key, path=path, progress=progress)
    _remember(key, record)
    return record, float(record.meta["seconds"]), False


def _remember(key: str, record: ProxyRecord) -> None:
    _MEMORY[key] = record
    _MEMORY.move_to_end(key)
    while len(_MEMORY) > MEMORY_CACHE_SIZE:
        _MEMORY.popitem(last=False)


def _train_proxy(dataset: Dataset, config: ProxyConfig, *, seed: int, key: str, path: Path | None, progress: bool) -> ProxyRecord:
    from ..models import build_model
    from ..train.distributed import DistributedContext
    from ..train.loop import seed_everything, train

    recipe = replace(config.recipe, seed=int(seed))
    recorder = _make_recorder(len(dataset), recipe.epochs, config.record_epochs, recipe.eval_batch_size)
    seed_everything(int(seed))
    model = build_model(
        config.model, in_channels=dataset.in_channels, num_classes=dataset.num_classes,
        image_size=dataset.image_size, width=config.width,
    )
    run_dir = path.with_suffix(".run") if path is not None else None
    log.info("proxy: training %s (width %d) for %d epochs on %s, seed %d", config.model, config.width, recipe.epochs, dataset.name, seed)
    started = time.perf_counter()
    result = train(model, dataset, recipe, hooks=[recorder], out_dir=run_dir, resume=True, progress=progress)
    seconds = time.perf_counter() - started
    meta = {
        "key": key,
        "format": PROXY_FORMAT,
        "fingerprint": dataset.fingerprint,
        "dataset": dataset.name,
        "model": config.model,
        "width": config.width,
        "recipe": asdict(recipe),
        "record_epochs": sorted(set(int(e) for e in config.record_epochs)),
        "seed": int(seed),
        "seconds": seconds,
        "train_seconds": result.seconds,
        "test_top1": result.top1,
        "per_sample_dynamics": "training forward (augmented batch, train mode, before the step's update)",
        "logits_features": "no-grad eval-mode pass over the un-augmented training set at epoch end",
    }
    record = recorder.record(dataset.train.label_array, meta).validate(n=len(dataset), num_classes=dataset.num_classes)
    if path is not None and DistributedContext.from_env().is_main:
        record.save(path)
        if run_dir is not None and run_dir.exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        log.info("proxy: cached at %s", path)
    return record


# --------------------------------------------------------------------------------------------
# helpers for methods
# --------------------------------------------------------------------------------------------
def proxy_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th proxy run of a selection with ``seed``: run 0 is the shared proxy
    (``seed`` itself), further runs get seeds derived from (seed, index) that never collide with
    another selection seed's run 0."""
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0]) | (1 << 31)


def proxy_records(ctx: "SelectionContext", count: int) -> list[ProxyRecord]:
    """``count`` proxy runs with distinct seeds (for scores averaged over seeds, as in EL2N/GraNd).

    The first is ``ctx.proxy()`` (shared with every other method); the others are cached alike and
    their training time is added to the proxy timing.
    """
    records = [ctx.proxy()]
    config = resolve_config(ctx.dataset, ctx.proxy_config)
    for index in range(1, count):
        record, seconds, cached = run_proxy(
            ctx.dataset, config, seed=proxy_seed(ctx.seed, index), cache_dir=ctx.cache_dir, progress=ctx.progress
        )
        if not cached:
            ctx.timings["proxy_s"] = float(ctx.timings.get("proxy_s", 0.0)) + seconds
        records.append(record)
    return records


def check_proxy_inputs(
    ctx: "SelectionContext",
    method: str,
    *,
    logits: Iterable[int | None] = (),
    features: Iterable[int | None] = (),
    margin: bool = False,
    seeds: int = 1,
    min_epochs: int = 1,
) -> None:
    """Refuse, before any training, a request the proxy record cannot serve.

    ``logits`` / ``features`` list the epochs a method reads (None = its default, resolved by the
    method); with user dynamics the record is checked, else the proxy config's recorded epochs.
    """
    if seeds < 1:
        raise InputError(f"method {method!r}: seeds must be at least 1, got {seeds}")
    user = ctx.dynamics
    if user is not None:
        if not isinstance(user, ProxyRecord):
            raise InputError(
                f"method {method!r}: dynamics must be a ProxyRecord (read files with "
                f"rlselector.selection.proxy.load_dynamics), got {type(user).__name__}"
            )
        user.validate(n=len(ctx.dataset), labels=ctx.labels, num_classes=ctx.dataset.num_classes)
        if seeds > 1:
            raise InputError(
                f"method {method!r}: seeds={seeds} needs {seeds} proxy runs but user dynamics "
                f"({user.source}) are one run; use seeds=1 or drop --dynamics"
            )
        logit_epochs, feature_epochs, has_margin, where = user.logit_epochs, user.feature_epochs, user.margin is not None, user.source
        epochs = user.epochs
    else:
        config = resolve_config(ctx.dataset, ctx.proxy_config)
        config.validate()
        logit_epochs = feature_epochs = sorted(set(int(e) for e in config.record_epochs))
        has_margin, where = True, f"the proxy (record_epochs={logit_epochs})"
        epochs = config.recipe.epochs
    if epochs < min_epochs:
        raise InputError(
            f"method {method!r}: needs per-sample dynamics over at least {min_epochs} epochs but {where} "
            f"covers {epochs} (fields 'loss'/'correct' are E x N)"
        )
    for name, wanted, have in (("logits", logits, logit_epochs), ("features", features, feature_epochs)):
        for epoch in wanted:
            if epoch is None:
                if not have:
                    raise InputError(f"method {method!r}: {where} has no '{name}_<epoch>' field; it needs {name}")
            elif int(epoch) not in have:
                raise InputError(
                    f"method {method!r}: needs {name} at epoch {epoch} but {where} records them at {have}; "
                    f"choose one of those epochs"
                )
    if margin and not has_margin:
        raise InputError(f"method {method!r}: {where} has no 'margin' field (E x N); AUM needs it")
