"""The Lightning callback: a SelectionLoop fed from Trainer.fit (the optional extra rlselector[lightning])."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

if os.environ.get("CI"):
    import lightning.pytorch as pl  # CI installs the extra: a missing one fails here, it is not skipped
else:
    pl = pytest.importorskip("lightning.pytorch")

from rlselector import SelectionLoop, load_dataset, load_selection, select  # noqa: E402
from rlselector.errors import InputError  # noqa: E402
from rlselector.lightning import SelectionCallback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
from common import SmallCNN  # noqa: E402


class Module(pl.LightningModule):
    """Returns what the callback feeds; keeps its own per-sample losses to check the record against."""

    def __init__(self, answer_dict: bool = True) -> None:
        super().__init__()
        self.model, self.answer_dict = SmallCNN(), answer_dict
        self.losses: dict[int, dict[int, float]] = {}

    def training_step(self, batch, batch_idx):
        x, y, index = batch
        features = self.model.features(x)
        logits = self.model.classifier(features)
        losses = F.cross_entropy(logits, y, reduction="none")
        self.losses.setdefault(self.current_epoch, {}).update(zip(index.tolist(), losses.tolist()))
        if not self.answer_dict:
            return losses.mean()
        return {"loss": losses.mean(), "indices": index, "features": features, "logits": logits, "labels": y}

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=2)}


def fit(module, callback, data):
    x = data.train.images.float() / 255.0
    dataset = torch.utils.data.TensorDataset(x, data.train.labels, torch.arange(len(data)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, callbacks=[callback], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", limit=200, seed=0)


def test_a_two_epoch_fit_feeds_the_loop_and_writes_the_selection(data, tmp_path):
    pl.seed_everything(0, verbose=False)
    loop = SelectionLoop(data.train.labels, 0.4, "forgetting", seed=0, progress=False)
    callback, module = SelectionCallback(loop, out=tmp_path / "sel"), Module()
    fit(module, callback, data)
    record = loop.dynamics()
    # the record holds, per epoch and sample, exactly the loss the module computed in that step
    for epoch in (0, 1):
        np.testing.assert_allclose(record.loss[epoch], [module.losses[epoch][i] for i in range(len(data))], rtol=1e-6)
    np.testing.assert_allclose(record.lr, [0.05, 0.025])  # each epoch's rate, before the scheduler's step
    loaded = load_selection(tmp_path / "sel")
    assert loaded.manifest["method"] == "forgetting" and loaded.manifest["n_kept"] == 80
    np.testing.assert_array_equal(loaded.indices, callback.selection.indices)
    # the same selection forgetting makes of these dynamics through select()
    np.testing.assert_array_equal(loaded.indices, select(data, "forgetting", ratio=0.4, seed=0, dynamics=record, progress=False).indices)


def test_a_training_step_without_indices_is_refused(data):
    loop = SelectionLoop(data.train.labels, 0.4, "forgetting", progress=False)
    with pytest.raises(InputError, match="must return a dict with 'loss', 'indices'"):
        fit(Module(answer_dict=False), SelectionCallback(loop), data)


def test_the_lightning_example_runs(tmp_path):
    out = tmp_path / "sel"
    subprocess.run([sys.executable, str(ROOT / "examples" / "lightning_fit.py"), "--epochs", "2", "--limit", "200", "--out", str(out)],
                   check=True, capture_output=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    sel = load_selection(out)
    assert sel.manifest["method"] == "rl-selector" and abs(sel.manifest["n_kept"] - 100) <= 2
