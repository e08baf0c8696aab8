"""Checkpoints load with weights_only=True: a crafted one runs no code, a damaged one is one clear error."""

import numpy as np
import pytest
import torch

import rlselector.methods.rl_selector as rl_selector_module  # the method calls the replay through this name
from rlselector import load_dataset, select
from rlselector.errors import InputError
from rlselector.train import TrainConfig, TrainHook, build_for, train

CONFIG = TrainConfig(epochs=1, batch_size=64, seed=0)


class Payload:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do instead."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def craft(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Payload(marker), "epoch": 0}, path)


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=200, seed=0)


def test_crafted_checkpoint_runs_no_code_under_resume(small, tmp_path):
    checkpoint, marker = tmp_path / "run" / "checkpoint.pt", tmp_path / "marker"
    craft(checkpoint, marker)
    with pytest.raises(InputError, match=str(checkpoint)) as err:
        train(build_for(small, "resnet18", 4, 0), small, CONFIG, out_dir=tmp_path / "run", resume=True, progress=False)
    assert "could run code" in str(err.value) and "start over" in str(err.value)
    assert not marker.exists()


def test_truncated_checkpoint_is_one_clear_error(small, tmp_path):
    run = tmp_path / "run"
    train(build_for(small, "resnet18", 4, 0), small, CONFIG, out_dir=run, progress=False, evaluate_test=False)
    truncate(run / "checkpoint.pt")
    with pytest.raises(InputError, match="truncated or damaged") as err:
        train(build_for(small, "resnet18", 4, 0), small, CONFIG, out_dir=run, resume=True, progress=False)
    assert str(run / "checkpoint.pt") in str(err.value) and "delete it to start over, or choose another --out" in str(err.value)
    (run / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(InputError, match="truncated or damaged"):
        train(build_for(small, "resnet18", 4, 0), small, CONFIG, out_dir=run, resume=True, progress=False)


def test_init_from_refuses_crafted_and_truncated_checkpoints(small, tmp_path):
    select(small, "rl-selector", 0.5, 0, epochs=1, out=tmp_path / "run", progress=False)
    checkpoint, marker = tmp_path / "run" / "work" / "target" / "checkpoint.pt", tmp_path / "marker"
    original = checkpoint.read_bytes()
    craft(checkpoint, marker)
    with pytest.raises(InputError, match=str(checkpoint)) as err:
        select(small, "rl-selector", 0.3, 0, init_from=str(tmp_path / "run"), out=tmp_path / "t", progress=False)
    assert "could run code" in str(err.value) and "--init-from" in str(err.value)
    assert not marker.exists()
    checkpoint.write_bytes(original)
    truncate(checkpoint)
    with pytest.raises(InputError, match="truncated or damaged"):
        select(small, "rl-selector", 0.3, 0, init_from=str(tmp_path / "run"), out=tmp_path / "t", progress=False)
    assert not (tmp_path / "t" / "selection.json").exists()


def test_rl_selector_on_features_resumes_to_the_same_selection(small, tmp_path, monkeypatch):
    features = small.train.images.reshape(len(small), -1).float().numpy()
    settings = dict(features=features, epochs=4, progress=False)
    whole = select(small, "rl-selector", 0.4, 1, **settings)

    class Crash(TrainHook):
        def on_epoch_end(self, epoch, model):
            if epoch == 2:
                raise KeyboardInterrupt

    replay = rl_selector_module.replay_features
    monkeypatch.setattr(rl_selector_module, "replay_features", lambda *a, hooks, **kw: replay(*a, hooks=[*hooks, Crash()], **kw))
    with pytest.raises(KeyboardInterrupt):
        select(small, "rl-selector", 0.4, 1, out=tmp_path / "sel", **settings)
    assert (tmp_path / "sel" / "work" / "agent" / "checkpoint.pt").exists()
    monkeypatch.setattr(rl_selector_module, "replay_features", replay)
    resumed = select(small, "rl-selector", 0.4, 1, out=tmp_path / "sel", resume=True, **settings)
    np.testing.assert_array_equal(resumed.indices, whole.indices)
    np.testing.assert_array_equal(resumed.scores, whole.scores)
