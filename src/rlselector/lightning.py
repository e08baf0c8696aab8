"""PyTorch Lightning: a :class:`~rlselector.SelectionLoop` inside ``Trainer.fit`` (``pip install 'rlselector[lightning]'``).

::

    loop = rlselector.SelectionLoop(train_labels, ratio=0.5, method="rl-selector", epochs=10)
    callback = SelectionCallback(loop, out="runs/mine")
    lightning.Trainer(max_epochs=10, callbacks=[callback]).fit(module, loader)
    callback.selection                                   # also written to runs/mine

The module's ``training_step`` returns a dict: ``loss`` (what Lightning minimises), ``indices`` (the
batch's positions in the training set) and what the method reads: ``features`` (penultimate),
``logits``, optionally ``labels`` (checked) and ``losses`` (per-sample). The callback feeds them to
``loop.observe`` after every step, ``loop.end_epoch`` after every epoch with the mean learning rate
of the epoch's steps (first optimiser, first parameter group), and ``loop.finish`` when fit ends.
One process only: under several devices each would see a shard of the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

try:
    import lightning.pytorch as pl
except ImportError as err:  # the optional extra
    raise ImportError("rlselector.lightning needs PyTorch Lightning: pip install 'rlselector[lightning]'") from err

from .errors import InputError
from .loop import SelectionLoop
from .selection.format import Selection

FED = ("features", "logits", "labels", "losses")
"""Keys of ``training_step``'s dict handed to ``SelectionLoop.observe`` beside ``indices``."""


class SelectionCallback(pl.Callback):
    """Feeds ``loop`` from ``Trainer.fit``; the finished :class:`Selection` is :attr:`selection`."""

    def __init__(self, loop: SelectionLoop, *, out: str | Path | None = None, overwrite: bool = False) -> None:
        self.loop, self.out, self.overwrite = loop, out, overwrite
        self.selection: Selection | None = None
        self._rates: list[float] = []

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1:
            raise InputError(f"SelectionCallback: fit runs on {trainer.world_size} processes, each seeing a shard of the data; "
                             f"select in one process (devices=1)")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._rates.append(float(trainer.optimizers[0].param_groups[0]["lr"]))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "indices" not in outputs:
            raise InputError("SelectionCallback: training_step must return a dict with 'loss', 'indices' (the batch's positions in "
                             f"the training set) and the method's inputs among {list(FED)}; got {type(outputs).__name__}")
        self.loop.observe(outputs["indices"], **{key: outputs.get(key) for key in FED})

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.loop.end_epoch(lr=float(np.mean(self._rates)) if self._rates else None)
        self._rates = []

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.selection = self.loop.finish(self.out, overwrite=self.overwrite)
