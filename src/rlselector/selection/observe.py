"""What a training loop feeds a selection: the observer protocol and the observers that record.

An :class:`Observer` is fed once per minibatch (:meth:`~Observer.observe`: the batch's dataset
indices with its penultimate features, logits, labels or per-sample losses) and once per epoch
(:meth:`~Observer.end_epoch`). The user's own loop feeds it through :class:`rlselector.SelectionLoop`;
the project's training loop feeds the very same object, because every observer is also a
:class:`~rlselector.train.hooks.TrainHook` (``on_batch`` → ``observe``, ``on_epoch_end`` → ``end_epoch``).

- :class:`DynamicsRecorder` keeps what the dynamics-based methods read (a
  :class:`~rlselector.selection.dynamics.ProxyRecord`), one row per epoch, so it needs no epoch count
  up front. Logits and features at the recorded epochs come, in the project's loop, from a no-grad
  eval pass at the end of the epoch (it has the model and the images). In the user's loop it has
  neither: the **last training forward of each sample in that epoch** stands in (train mode,
  augmented batch, weights before that step's update; the record's ``meta`` says so).
- :class:`FeatureRecorder` keeps the latest features of every sample, for the features-based methods.
- A method that acts while the network trains (RL-Selector) is an :class:`ObservingMethod`: it hands
  out its own observer and decides from it when training ends.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from ..bank import FeatureBank
from ..data.transforms import BatchTransform
from ..errors import InputError
from ..train.evaluate import forward_split
from ..train.hooks import BatchContext, TrainHook
from .dynamics import ProxyRecord

STAND_IN = "the last training forward of each sample in that epoch (train mode, augmented batch, before the step's update)"
"""What stands in for the eval-mode logits/features of a recorded epoch when the observer has no model and data."""


def _cpu(values: Any) -> torch.Tensor:
    return torch.as_tensor(values).detach().cpu()


def batch_indices(indices: Any, n: int) -> torch.Tensor:
    """A minibatch's dataset indices as a 1-D int64 CPU tensor, each in ``[0, n)``."""
    index = _cpu(indices)
    if index.ndim != 1 or index.dtype.is_floating_point or index.dtype == torch.bool:
        raise InputError(f"observe(): indices must be a 1-D integer tensor (the batch's dataset positions), got {index.dtype} of shape {tuple(index.shape)}")
    index = index.long()
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= n):
        raise InputError(f"observe(): indices must lie in [0, {n}) (positions in the training set), got {int(index.min())}..{int(index.max())}")
    return index


def batch_rows(values: Any, name: str, count: int, *, keep_device: bool = False) -> torch.Tensor:
    """A minibatch's per-sample rows (features or logits) as a 2-D float32 tensor of ``count`` rows, on
    the CPU (``keep_device``: where they lie, e.g. the training GPU)."""
    rows = (torch.as_tensor(values).detach() if keep_device else _cpu(values)).float()
    if rows.ndim != 2 or rows.shape[0] != count:
        raise InputError(f"observe(): {name} must be ({count}, ...) (one row per index of the batch), got shape {tuple(rows.shape)}")
    return rows


class Observer(TrainHook, ABC):
    """Fed once per minibatch and once per epoch, by any training loop."""

    @abstractmethod
    def observe(self, indices: Any, *, features: Any = None, logits: Any = None, labels: Any = None, losses: Any = None) -> None:
        """One minibatch: ``indices`` (B,) dataset positions; ``features`` (B, d) penultimate features,
        ``logits`` (B, C), ``labels`` (B,) (checked against the known labels), ``losses`` (B,) per-sample
        losses, each of the training forward that produced this step's gradient."""

    @abstractmethod
    def end_epoch(self) -> dict[str, float]:
        """Close the epoch; returns numbers for the epoch's log record."""

    def on_batch(self, batch: BatchContext) -> None:
        self.observe(batch.indices, features=batch.features, logits=batch.logits, labels=batch.labels, losses=batch.losses)

    def on_epoch_end(self, epoch: int, model) -> dict[str, float]:
        return self.end_epoch()


class ObservingMethod(ABC):
    """A selection method that acts while the network trains: its observer is fed by the loop (the
    project's or the user's) and it decides from that observer once training ends."""

    @abstractmethod
    def observer(self, ctx: Any) -> Observer:
        """The observer for a user's loop on ``ctx`` (a SelectionContext), refused before training if the
        method's parameters cannot run there."""

    @abstractmethod
    def decide(self, ctx: Any, observer: Any, *, readout_features: Any = None) -> Any:
        """The MethodResult, from the observer after the last epoch (``readout_features``: eval-mode
        features of every sample for the final decision, when the loop has them)."""


class LatestRows:
    """The latest row written for each of ``n`` samples, in a float32 :class:`~rlselector.bank.FeatureBank`
    sized by the first rows written, with a note of which samples were written."""

    def __init__(self, n: int) -> None:
        self.bank: FeatureBank | None = None
        self.written = torch.zeros(n, dtype=torch.bool)

    def put(self, index: torch.Tensor, rows: torch.Tensor) -> None:
        if self.bank is None:
            self.bank = FeatureBank(len(self.written), rows.shape[1], dtype="float32")
        elif rows.shape[1] != self.bank.d:
            raise InputError(f"observe(): rows of width {rows.shape[1]} after rows of width {self.bank.d}; every batch must give the same width")
        self.bank.update(index, rows)
        self.written[index] = True

    def array(self, what: str) -> np.ndarray:
        """The rows as an (n, d) float32 array; refused while a sample has none."""
        if self.bank is None or not bool(self.written.all()):
            missing = int(torch.nonzero(~self.written)[0])
            raise InputError(f"{what}: sample {missing} was never observed; every training sample must pass through observe()")
        return self.bank.all().numpy()


class FeatureRecorder(Observer):
    """The latest features of every sample: what the features-based methods read after a user's loop
    (the training forward's features: train mode, augmented batch)."""

    def __init__(self, n: int) -> None:
        self.rows = LatestRows(n)

    def observe(self, indices: Any, *, features: Any = None, logits: Any = None, labels: Any = None, losses: Any = None) -> None:
        if features is None:
            raise InputError("observe(): this method reads features: pass features= (the (B, d) penultimate features of the batch)")
        index = batch_indices(indices, len(self.rows.written))
        self.rows.put(index, batch_rows(features, "features", len(index)))

    def end_epoch(self) -> dict[str, float]:
        return {}

    def features(self) -> np.ndarray:
        """(N, d) float32: each sample's latest features."""
        return self.rows.array("features")

    def state_dict(self) -> dict[str, Any]:
        return {"rows": None if self.rows.bank is None else self.rows.bank.all(), "written": self.rows.written.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = LatestRows(len(state["written"]))
        if state["rows"] is not None:
            self.rows.put(torch.nonzero(state["written"])[:, 0], state["rows"][state["written"]])


_SUMS = ("loss_sum", "margin_sum", "prob_margin_sum", "correct_sum", "seen")
"""The recorder's per-(epoch, sample) accumulators."""


class DynamicsRecorder(Observer):
    """Per-sample loss, correctness and margins of every epoch's training forward; logits and features
    at the ``record_epochs`` (None = every epoch). Sums per epoch and sample: a sample seen twice in one
    epoch (the distributed sampler's padding) is averaged.

    In the project's loop (``on_train_start`` hands it the model's data) logits/features come from a
    no-grad eval pass over the un-augmented training set at the end of a recorded epoch, and epoch 0
    (initialisation) can be recorded; in a user's loop the epoch's last training forward stands in.
    """

    def __init__(self, labels: np.ndarray, num_classes: int, record_epochs: Iterable[int] | None, *, eval_batch_size: int = 1024) -> None:
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.num_classes = int(num_classes)
        self.record_epochs = None if record_epochs is None else sorted(set(int(e) for e in record_epochs))
        self.eval_batch_size = eval_batch_size
        self.rows: dict[str, list[torch.Tensor]] = {name: [] for name in _SUMS}
        """One (N,) tensor per epoch begun, per accumulator; the open epoch's lies where the logits do
        (the training GPU: no copy to the host per step), ended ones on the CPU."""
        self.epochs_done = 0
        """Epochs ended."""
        self.logits: dict[int, np.ndarray] = {}
        self.features: dict[int, np.ndarray] = {}
        self.split = None
        self.transform = None
        self._latest: tuple[LatestRows, LatestRows] | None = None
        """(logits, features) of the current epoch's training forwards, when they stand in for its snapshot."""

    @property
    def n(self) -> int:
        return len(self.labels)

    def records(self, epoch: int) -> bool:
        """Whether logits/features are kept at the end of ``epoch``."""
        return self.record_epochs is None or epoch in self.record_epochs

    # --- feeding ---------------------------------------------------------------------------
    def observe(self, indices: Any, *, features: Any = None, logits: Any = None, labels: Any = None, losses: Any = None) -> None:
        if logits is None:
            raise InputError("observe(): the dynamics recorder needs logits= (the (B, C) outputs of the training forward) for per-sample correctness and margins")
        index = batch_indices(indices, self.n)
        logits = batch_rows(logits, "logits", len(index), keep_device=True)
        if logits.shape[1] != self.num_classes:
            raise InputError(f"observe(): logits have {logits.shape[1]} columns but there are {self.num_classes} classes")
        truth = self.labels[index]
        if labels is not None and not torch.equal(_cpu(labels).long().reshape(-1), truth):
            raise InputError("observe(): labels disagree with the training labels at these indices; indices must be positions in the training set, in its order")
        if losses is not None:
            losses = torch.as_tensor(losses).detach().float().reshape(-1)
            if losses.shape != truth.shape:
                raise InputError(f"observe(): losses must be ({len(index)},) (one per sample, reduction='none'), got shape {tuple(losses.shape)}")
        self._accumulate(index, logits, truth, losses)
        if self._latest is not None:  # the stand-in snapshot of a user's loop: kept on the CPU
            self._latest[0].put(index, logits.cpu())
            if features is not None:
                self._latest[1].put(index, batch_rows(features, "features", len(index)))

    def on_batch(self, batch: BatchContext) -> None:
        if self.split is None or batch.logits is None:  # fed like a user's loop (no model and data handed over): every check of observe()
            return super().on_batch(batch)
        # the project's loop: indices from its sampler, labels its own; nothing is read back from the device
        self._accumulate(batch.indices, batch.logits, self.labels[batch.indices], batch.losses)

    def _accumulate(self, index: torch.Tensor, logits: torch.Tensor, truth: torch.Tensor, losses: torch.Tensor | None) -> None:
        """Add one minibatch to the open epoch's sums, on the logits' device."""
        logits = logits.detach().float()
        truth = truth.to(logits.device)
        index = index.to(logits.device)
        losses = F.cross_entropy(logits, truth, reduction="none") if losses is None else losses.detach().float().to(logits.device)
        row = self._open_epoch(logits.device)
        row["loss_sum"].index_add_(0, index, losses.double())
        row["margin_sum"].index_add_(0, index, _margin(logits, truth).double())
        row["prob_margin_sum"].index_add_(0, index, _margin(logits.softmax(1), truth).double())
        row["correct_sum"].index_add_(0, index, (logits.argmax(1) == truth).int())
        row["seen"].index_add_(0, index, torch.ones_like(index, dtype=torch.int32))

    def end_epoch(self) -> dict[str, float]:
        latest, epoch = self._latest, self._close()
        if latest is not None:
            self.logits[epoch] = latest[0].array(f"logits of epoch {epoch}")
            if latest[1].bank is not None:
                self.features[epoch] = latest[1].array(f"features of epoch {epoch}")
        return {}

    def _open_epoch(self, device: torch.device) -> dict[str, torch.Tensor]:
        if len(self.rows["seen"]) == self.epochs_done:
            for name in _SUMS:
                dtype = torch.int32 if name in ("correct_sum", "seen") else torch.float64
                self.rows[name].append(torch.zeros(self.n, dtype=dtype, device=device))
            stand_in = self.split is None and self.records(self.epochs_done + 1)
            self._latest = (LatestRows(self.n), LatestRows(self.n)) if stand_in else None
        return {name: rows[-1] for name, rows in self.rows.items()}

    def _close(self) -> int:
        if len(self.rows["seen"]) == self.epochs_done:
            raise InputError(f"end_epoch(): epoch {self.epochs_done + 1} observed no minibatch; call observe() for each minibatch first")
        self.epochs_done += 1
        for name in _SUMS:  # one copy per epoch to the host
            self.rows[name][-1] = self.rows[name][-1].cpu()
        self._latest = None
        return self.epochs_done

    # --- the project's training loop --------------------------------------------------------
    def on_train_start(self, model, dataset) -> None:
        self.split = dataset.train
        self.transform = BatchTransform.for_dataset(dataset, augment=False)
        if self.records(0) and 0 not in self.logits:
            self._snapshot(0, model)

    def on_epoch_end(self, epoch: int, model) -> dict[str, float]:
        if self.split is None:
            return self.end_epoch()
        closed = self._close()
        if self.records(closed):
            self._snapshot(closed, model)
        return {}

    def _snapshot(self, epoch: int, model) -> None:
        feats, logits = forward_split(model, self.split, self.transform, batch_size=self.eval_batch_size)
        self.features[epoch], self.logits[epoch] = feats.astype(np.float32), logits.astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        """Tensors only, so the checkpoint loads with ``torch.load(weights_only=True)``."""
        return {
            **{name: torch.stack(rows).cpu() if rows else torch.zeros((0, self.n), dtype=torch.float64) for name, rows in self.rows.items()},
            "logits": {e: torch.from_numpy(v) for e, v in self.logits.items()},
            "features": {e: torch.from_numpy(v) for e, v in self.features.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in _SUMS:
            self.rows[name] = list(state[name].clone())
        self.epochs_done = len(self.rows["seen"])
        self.logits = {int(e): v.numpy() for e, v in state["logits"].items()}
        self.features = {int(e): v.numpy() for e, v in state["features"].items()}

    # --- the record ---------------------------------------------------------------------------
    def record(self, meta: dict[str, Any], *, lr: Iterable[float] | None = None, source: str) -> ProxyRecord:
        """The :class:`ProxyRecord` of the ended epochs; ``lr``: each epoch's learning rate, if known."""
        if len(self.rows["seen"]) > self.epochs_done:
            raise InputError(f"{source}: epoch {self.epochs_done + 1} was observed but not ended; call end_epoch() after its last minibatch")
        if self.epochs_done == 0:
            raise InputError(f"{source}: no epoch ended; feed observe() each minibatch and end_epoch() after each epoch")
        sums = {name: torch.stack(rows).cpu().numpy() for name, rows in self.rows.items()}
        seen = sums["seen"]
        if (seen == 0).any():
            epoch, sample = np.argwhere(seen == 0)[0]
            raise InputError(f"{source}: sample {sample} was never observed in epoch {epoch + 1}; every training sample must pass through each epoch")
        return ProxyRecord(
            loss=(sums["loss_sum"] / seen).astype(np.float32),
            correct=sums["correct_sum"] * 2 >= seen,
            margin=(sums["margin_sum"] / seen).astype(np.float32),
            prob_margin=(sums["prob_margin_sum"] / seen).astype(np.float32),
            lr=None if lr is None else np.asarray(list(lr), dtype=np.float64),
            logits=self.logits,
            features=self.features,
            labels=self.labels.numpy(),
            meta=meta,
            source=source,
        )


def _margin(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per row: the assigned class's score minus the largest other score."""
    assigned = scores.gather(1, labels[:, None])[:, 0]
    others = scores.scatter(1, labels[:, None], float("-inf")).max(dim=1).values
    return assigned - others
