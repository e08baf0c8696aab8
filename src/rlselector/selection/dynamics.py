"""Per-sample training dynamics: the :class:`ProxyRecord` every dynamics-based method reads, its
file schema and :func:`load_dynamics` for the user's ``--dynamics FILE.npz``.

What the record holds (epochs are 1-based: epoch ``e`` is the ``e``-th pass; ``0`` is the model at
initialisation, recorded only when asked for):

- ``loss`` (E×N float32), ``correct`` (E×N bool), ``margin`` (E×N float32): per-sample cross-entropy,
  correctness and margin (assigned logit − largest other) **from the training forward pass** of
  epoch ``e`` (row ``e−1``), i.e. on the augmented batch, in train mode (batch-norm batch
  statistics), with the weights *before* that step's update. This is what Toneva et al.
  (forgetting) and Pleiss et al. (AUM) record; it costs no extra pass.
- ``prob_margin`` (E×N float32): the same margin in probabilities, ``p_y − max_{k≠y} p_k`` of the
  softmax of that forward: the margin AUM's authors define.
- ``lr`` ((E,) float64): the learning rate of epoch ``e``'s steps (row ``e−1``), for methods that weigh
  epochs by it (MoSo); absent when the loop that trained did not say.
- ``logits[e]`` (N×C) and ``features[e]`` (N×d, the input of the last linear layer) at the chosen
  epochs: a separate no-grad pass over the un-augmented training set in eval mode at the end of
  epoch ``e`` (:func:`~rlselector.train.forward_split`), so ``logits[e] = classifier(features[e])``
  exactly, as the last-layer gradient scores need. A record made in the user's own loop
  (:class:`rlselector.SelectionLoop`) has no such pass: there the last training forward of each
  sample in epoch ``e`` stands in (see :mod:`rlselector.selection.observe`, and ``meta``).

The proxy stage (:mod:`rlselector.selection.proxy`) produces such records; this module only holds
and checks them, so it needs neither torch nor the training loop.
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import InputError
from ..io import atomic_save_npz


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
    prob_margin: np.ndarray | None = None
    """(E, N) float32: assigned softmax probability minus the largest other one, same forward."""
    lr: np.ndarray | None = None
    """(E,) float64: the learning rate of each epoch's steps."""
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
        for name in ("margin", "prob_margin"):
            values = getattr(self, name)
            if values is None:
                continue
            values = np.asarray(values)
            if values.shape != loss.shape:
                fail(name, f"has shape {values.shape} but 'loss' has {loss.shape}; both are (E, N)")
            self._finite(name, values)
            if name == "prob_margin" and np.abs(values).max() > 1 + 1e-6:
                fail(name, f"holds {float(np.abs(values).max()):.4g} but a difference of probabilities lies in [-1, 1]")
            setattr(self, name, _frozen(values.astype(np.float32, copy=False)))
        if self.lr is not None:
            lr = np.asarray(self.lr)
            if lr.shape != (epochs,) or not np.issubdtype(lr.dtype, np.number) or np.issubdtype(lr.dtype, np.complexfloating):
                fail("lr", f"must be ({epochs},) numbers, one learning rate per epoch of 'loss', got shape {lr.shape} dtype {lr.dtype}")
            self._finite("lr", lr)
            if (lr < 0).any():
                fail("lr", f"holds a negative learning rate ({float(lr.min())}) at epoch {int(np.argmin(lr)) + 1}")
            self.lr = _frozen(lr.astype(np.float64, copy=False))
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
        for name in ("margin", "prob_margin", "lr"):
            if getattr(self, name) is not None:
                out[name] = np.asarray(getattr(self, name))
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
optionally 'margin' and 'prob_margin' (E x N float), 'lr' (E float: each epoch's learning rate),
'labels' (N int), 'logits_<epoch>' (N x C float) and
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
        elif name not in ("loss", "correct", "margin", "prob_margin", "lr", "labels", "meta"):
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
        prob_margin=arrays.get("prob_margin"),
        lr=arrays.get("lr"),
        labels=arrays.get("labels"),
        meta=meta,
        source=str(path),
    )
    return record.validate(n=n, labels=labels, num_classes=num_classes)
