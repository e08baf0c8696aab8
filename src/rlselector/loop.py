"""Selection inside your own training loop: :class:`SelectionLoop`.

Three calls in any PyTorch loop::

    loop = rlselector.SelectionLoop(train_labels, ratio=0.5, method="rl-selector", seed=0, epochs=10)
    for epoch in range(10):
        for images, labels, index in loader:                     # index: positions in the training set
            features = model.features(images); logits = model.classifier(features)
            ...                                                  # your loss, backward, step
            loop.observe(index, features=features, logits=logits)
        loop.end_epoch(lr=optimizer.param_groups[0]["lr"])
    selection = loop.finish(out="runs/mine")                     # the standard selection directory

The loop holds the method's observer (:mod:`rlselector.selection.observe`): RL-Selector's agent acts
in ``observe`` as your model trains; a dynamics-based baseline (EL2N, forgetting, AUM, ...) records
what it reads; a features-based one (herding, k-center, ...) keeps every sample's latest features.
``finish`` decides through :func:`rlselector.api.complete`, the same ending :func:`rlselector.select`
uses, so both write the same format. The loop is also a :class:`~rlselector.train.hooks.TrainHook`:
``rlselector.train.train(model, dataset, config, hooks=[loop])`` feeds it from the project's loop.

What differs from :func:`rlselector.select` (documented, not hidden):

- The per-sample dynamics come from your training forward, as the proxy's do. The proxy's logits and
  features at a recorded epoch come from an extra eval pass; your loop has none, so **the last
  training forward of each sample in that epoch** stands in (train mode, augmented, before the step).
- Without an rlselector :class:`~rlselector.data.base.Dataset` the manifest's ``dataset`` block says
  what is known: ``name`` (yours, default ``training-loop``), ``source``, ``num_classes`` and a
  ``fingerprint`` ``labels-sha256:…`` of N, the class names, the labels and, when given, the sample
  IDs. Pass a Dataset instead of labels to get its content fingerprint (then ``Selection.subset``
  works on it).
- Timings count from the loop's construction to ``finish``: your training is in them.
"""

from __future__ import annotations

import hashlib
import math
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from .api import WORK, check_features, check_out, check_ratio, complete, get_method
from .data.base import Dataset, Split, as_labels
from .errors import InputError
from .selection.dynamics import ProxyRecord
from .selection.format import Selection
from .selection.method import SelectionContext, SelectionMethod
from .selection.observe import STAND_IN, DynamicsRecorder, FeatureRecorder, Observer, ObservingMethod
from .train.hooks import BatchContext, TrainHook

SERVED_INPUTS = ("proxy", "features", "target-training", "self-supervised")
"""Method inputs a training loop can feed: dynamics, and features (in place of a target network's or an encoder's)."""


class _NoImages:
    """The image store of a labels-only dataset: a loop hands rlselector no images."""

    def __init__(self, n: int) -> None:
        self.shape = (n, 0, 0, 0)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        raise InputError("a SelectionLoop knows the labels, not the images; this step needs the images: use rlselector.select on a Dataset")


class LabelsOnly(Dataset):
    """What a user's loop tells rlselector about its training set: N, the labels, the class names and,
    optionally, sample IDs. Its fingerprint covers exactly those."""

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        digest.update(repr((len(self), self.classes)).encode())
        digest.update(self.train.label_array.astype(np.int64).tobytes())
        if self.source_ids is not None:
            digest.update("\0".join(map(str, self.source_ids.tolist())).encode())
        return "labels-sha256:" + digest.hexdigest()


def labels_only(labels: Any, *, classes: Sequence[str] | None, sample_ids: Sequence[Any] | None, name: str) -> LabelsOnly:
    fix = "Pass one integer class id per training sample, in the order of your dataset's indices."
    values = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else labels
    labels = as_labels(values, where="SelectionLoop", fix=fix)
    if labels.size == 0 or labels.min() < 0:
        raise InputError(f"SelectionLoop: labels must be class ids ≥ 0, one per training sample, got {labels.size} labels (smallest {labels.min() if labels.size else None}). {fix}")
    classes = tuple(str(k) for k in range(int(labels.max()) + 1)) if classes is None else tuple(str(c) for c in classes)
    if labels.max() >= len(classes):
        raise InputError(f"SelectionLoop: label {int(labels.max())} but only {len(classes)} class names given")
    if sample_ids is not None and len(sample_ids) != len(labels):
        raise InputError(f"SelectionLoop: {len(sample_ids)} sample IDs for {len(labels)} labels; give one ID per training sample")
    return LabelsOnly(
        name=name, train=Split(images=_NoImages(len(labels)), labels=torch.from_numpy(labels)), test=None, classes=classes,
        source="labels only (a user's training loop)", source_ids=None if sample_ids is None else np.asarray(sample_ids),
    )


class SelectionLoop(TrainHook):
    """A selection made while any PyTorch loop trains: ``observe`` each minibatch, ``end_epoch`` each
    epoch, ``finish`` at the end.

    ``labels``: the training labels in index order (a sequence, array or tensor of class ids), or an
    rlselector :class:`~rlselector.data.base.Dataset`. ``method``, ``ratio``, ``seed``,
    ``class_balanced`` and ``**params`` as in :func:`rlselector.select`; for RL-Selector pass
    ``epochs=`` (your loop's epoch count, when known: its agent's schedule spans them).
    ``record_epochs``: epochs (1-based) at whose end a dynamics-based method keeps logits/features
    (None = every epoch: E·N·(C + d)·4 bytes). ``classes``, ``sample_ids``, ``name``: what the
    manifest records of data given as labels.
    """

    def __init__(
        self,
        labels: Any,
        ratio: float = 0.5,
        method: str = "rl-selector",
        *,
        seed: int = 0,
        class_balanced: bool = False,
        record_epochs: Iterable[int] | None = None,
        classes: Sequence[str] | None = None,
        sample_ids: Sequence[Any] | None = None,
        name: str = "training-loop",
        progress: bool = True,
        **params: Any,
    ) -> None:
        self._started = time.perf_counter()
        method_cls = get_method(method)
        self.method: SelectionMethod = method_cls(method_cls.make_params(**params))
        if isinstance(labels, Dataset):
            if classes is not None or sample_ids is not None:
                raise InputError("SelectionLoop: classes and sample_ids describe labels; a Dataset carries its own")
            dataset = labels
        else:
            dataset = labels_only(labels, classes=classes, sample_ids=sample_ids, name=name)
        self.ctx = SelectionContext(dataset=dataset, ratio=check_ratio(ratio), seed=int(seed), class_balanced=class_balanced, progress=progress)
        self.observers = self._observers(record_epochs)
        self.lr: list[float | None] = []
        """The learning rate each ended epoch was given (None where it was not)."""
        self._trained = False
        self._finished = False

    def _observers(self, record_epochs: Iterable[int] | None) -> list[Observer]:
        method, ctx = self.method, self.ctx
        if isinstance(method, ObservingMethod):
            observer = method.observer(ctx)
            method.validate(ctx)
            return [observer]
        unserved = sorted(set(method.inputs) - set(SERVED_INPUTS))
        if unserved:
            raise InputError(f"SelectionLoop: method {method.name!r} reads {unserved}, which a training loop cannot feed; use rlselector.select")
        if record_epochs is not None:
            record_epochs = sorted({int(e) for e in record_epochs})
            if not record_epochs or record_epochs[0] < 1:
                raise InputError(f"SelectionLoop: record_epochs must be epochs ≥ 1 (a loop records at the end of an epoch), got {record_epochs}")
        observers: list[Observer] = []
        if "proxy" in method.inputs:
            observers.append(DynamicsRecorder(ctx.labels, ctx.dataset.num_classes, record_epochs))
        if method.reads_features():
            observers.append(FeatureRecorder(len(ctx.dataset)))
        return observers

    # --- your loop --------------------------------------------------------------------------
    def observe(self, indices: Any, *, features: Any = None, logits: Any = None, labels: Any = None, losses: Any = None) -> None:
        """One minibatch of the training forward: ``indices`` (B,) positions in the training set;
        ``features`` (B, d) penultimate features; ``logits`` (B, C); ``labels`` (B,) (checked against
        the loop's); ``losses`` (B,) your per-sample loss (default: cross-entropy of the logits).
        RL-Selector needs features, dynamics-based methods logits, features-based ones features."""
        self._refuse_finished()
        for observer in self.observers:
            observer.observe(indices, features=features, logits=logits, labels=labels, losses=losses)

    def end_epoch(self, *, lr: float | None = None) -> dict[str, float]:
        """After an epoch's last minibatch. ``lr``: the learning rate of this epoch's steps (MoSo weighs
        epochs by it). Returns the method's numbers for your log (RL-Selector: ``agent_*``)."""
        self._refuse_finished()
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0):
            raise InputError(f"end_epoch(): lr must be a finite learning rate ≥ 0, got {lr!r}")
        record: dict[str, float] = {}
        for observer in self.observers:
            record.update(observer.end_epoch())
        self.lr.append(None if lr is None else float(lr))
        return record

    def finish(self, out: str | Path | None = None, *, overwrite: bool = False, readout_features: Any = None) -> Selection:
        """The selection, written to ``out`` (``selection.npz`` + ``selection.json``) when given.

        ``readout_features``: RL-Selector only, (N, d) features of every sample from one eval-mode
        pass of your model without augmentation, in which its read-out finds copies next to their
        originals (``select`` takes that pass itself). None: the last training forward's features,
        where augmentation keeps copies apart (``BENCHMARKS.md``, "Redundancy"). A loop made with a
        Dataset also reads the images (``readout_features`` parameter ``eval+input``, the default);
        one made with labels only cannot."""
        self._refuse_finished()
        out_dir = check_out(out, overwrite=overwrite)
        if readout_features is not None:
            if not isinstance(self.method, ObservingMethod):
                raise InputError(f"finish(): readout_features is read by rl-selector's decision only, not by {self.method.name}")
            readout_features = check_features(readout_features, len(self.ctx.dataset), where="finish(readout_features=...)")
        if not self._trained:
            self.on_train_end(None)
        ctx, method = self.ctx, self.method
        if isinstance(method, ObservingMethod):
            produce = lambda: method.decide(ctx, self.observers[0], readout_features=readout_features)  # noqa: E731
        else:
            for observer in self.observers:
                if isinstance(observer, DynamicsRecorder):
                    ctx.dynamics = self.dynamics()
                else:
                    ctx.features = check_features(observer.features(), len(ctx.dataset), where="SelectionLoop features")
            method.validate(ctx)
            produce = lambda: method.run(ctx)  # noqa: E731
        ctx.workdir = out_dir / WORK if out_dir is not None else None
        selection = complete(method, ctx, produce, out=out_dir, command=f"SelectionLoop({method.name!r}).finish", started=self._started)
        self._finished = True
        return selection

    def dynamics(self) -> ProxyRecord:
        """The training dynamics recorded so far (every ended epoch), checked: for a dynamics-based
        method, and to save (``.save(path)``) for others later (``select(..., dynamics=...)``)."""
        recorders = [o for o in self.observers if isinstance(o, DynamicsRecorder)]
        if not recorders:
            raise InputError(f"SelectionLoop: method {self.method.name!r} records no training dynamics")
        recorder = recorders[0]
        given = [lr is not None for lr in self.lr]
        if any(given) and not all(given):
            raise InputError(f"SelectionLoop: end_epoch() got lr= in epochs {[e + 1 for e, g in enumerate(given) if g]} but not in "
                             f"{[e + 1 for e, g in enumerate(given) if not g]}; give it every epoch or never")
        meta = {
            "source": "SelectionLoop",
            "per_sample_dynamics": "training forward (your loop's batch and mode, before the step's update)",
            "logits_features": STAND_IN if recorder.split is None else "no-grad eval-mode pass over the un-augmented training set at epoch end",
            "record_epochs": recorder.record_epochs or "every epoch",
        }
        record = recorder.record(meta, lr=self.lr if all(given) and given else None, source="SelectionLoop")
        return record.validate(n=len(self.ctx.dataset), labels=self.ctx.labels, num_classes=self.ctx.dataset.num_classes)

    def _refuse_finished(self) -> None:
        if self._finished:
            raise InputError("SelectionLoop: already finished; make a new SelectionLoop for another selection")

    # --- the project's training loop (rlselector.train.train(..., hooks=[loop])) ---------------
    def on_train_start(self, model, dataset) -> None:
        for observer in self.observers:
            observer.on_train_start(model, dataset)

    def on_epoch_start(self, epoch: int, model) -> None:
        for observer in self.observers:
            observer.on_epoch_start(epoch, model)

    def on_batch(self, batch: BatchContext) -> None:
        for observer in self.observers:
            observer.on_batch(batch)

    def on_epoch_end(self, epoch: int, model) -> dict[str, float]:
        record: dict[str, float] = {}
        for observer in self.observers:
            record.update(observer.on_epoch_end(epoch, model) or {})
        self.lr.append(None)
        return record

    def on_train_end(self, model) -> None:
        for observer in self.observers:
            observer.on_train_end(model)
        self._trained = True

    def state_dict(self) -> dict[str, Any]:
        return {"observers": [observer.state_dict() for observer in self.observers], "lr": list(self.lr)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for observer, observer_state in zip(self.observers, state["observers"]):
            observer.load_state_dict(observer_state)
        self.lr = list(state["lr"])
