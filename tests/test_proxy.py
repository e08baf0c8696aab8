"""The proxy stage: record shapes, caching (disk and memory), keys, resume, user dynamics."""

from dataclasses import replace

import numpy as np
import pytest

import rlselector.selection.proxy as loop  # the proxy stage calls the training loop through this name
from proxy_helpers import toy_dataset
from rlselector import load_dataset
from rlselector.errors import InputError
from rlselector.selection.dynamics import ProxyRecord, early_epoch, load_dynamics
from rlselector.selection.proxy import (
    ProxyConfig,
    cache_path,
    clear_memory_cache,
    default_proxy_config,
    proxy_seed,
    run_proxy,
)
from rlselector.train.hooks import TrainHook
from rlselector.train.loop import TrainConfig

SMALL = ProxyConfig(model="resnet18", width=8, recipe=TrainConfig(epochs=2, batch_size=32), record_epochs=(0, 2))


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", limit=60, seed=0)


@pytest.fixture
def count_trainings(monkeypatch):
    calls = []
    original = loop.train

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train", counted)
    clear_memory_cache()
    yield calls
    clear_memory_cache()


def test_record_shapes_and_consistency(data, count_trainings):
    record, seconds, cached = run_proxy(data, SMALL, seed=0, progress=False)
    assert not cached and seconds > 0 and len(count_trainings) == 1
    assert record.loss.shape == (2, 60) and record.loss.dtype == np.float32
    assert record.correct.shape == (2, 60) and record.correct.dtype == bool
    assert record.margin.shape == (2, 60) and record.prob_margin.shape == (2, 60) and record.prob_margin.dtype == np.float32
    assert record.logit_epochs == [0, 2] and record.feature_epochs == [0, 2]
    assert record.logits_at(2).shape == (60, 10) and record.features_at().shape == (60, 64)
    np.testing.assert_array_equal(record.labels, data.train.label_array)
    # correct ⇔ the assigned logit beats every other one, in the same training forward
    np.testing.assert_array_equal(record.correct, record.margin > 0)
    # the same margin in probabilities: same sign, within [-1, 1]
    np.testing.assert_array_equal(record.prob_margin > 0, record.margin > 0)
    assert np.abs(record.prob_margin).max() <= 1
    # each epoch's learning rate: cosine over 2 epochs from 0.1 → 0.1, 0.05
    np.testing.assert_allclose(record.lr, [0.1, 0.05])
    assert np.all(record.loss > 0)
    assert not record.loss.flags.writeable  # shared by every method: read-only
    assert record.meta["seed"] == 0 and record.meta["fingerprint"] == data.fingerprint


def test_disk_cache_hit_does_not_retrain(data, tmp_path, count_trainings):
    first, _, cached = run_proxy(data, SMALL, seed=0, cache_dir=tmp_path, progress=False)
    assert not cached and len(count_trainings) == 1
    path = cache_path(tmp_path, data, SMALL, 0)
    assert path.exists() and not path.with_suffix(".run").exists()  # checkpoint dir removed once cached
    clear_memory_cache()
    second, _, cached = run_proxy(data, SMALL, seed=0, cache_dir=tmp_path, progress=False)
    assert cached and len(count_trainings) == 1
    np.testing.assert_array_equal(second.loss, first.loss)
    np.testing.assert_array_equal(second.features_at(2), first.features_at(2))
    # the cache file is itself a valid --dynamics file
    assert load_dynamics(path, len(data)).logit_epochs == [0, 2]


def test_memory_cache_without_cache_dir(data, count_trainings):
    run_proxy(data, SMALL, seed=0, progress=False)
    record, _, cached = run_proxy(data, SMALL, seed=0, progress=False)
    assert cached and len(count_trainings) == 1
    run_proxy(data, SMALL, seed=1, progress=False)
    assert len(count_trainings) == 2


def test_same_seed_trains_the_same_record(data, count_trainings):
    first, _, _ = run_proxy(data, SMALL, seed=2, progress=False)
    clear_memory_cache()
    second, _, cached = run_proxy(data, SMALL, seed=2, progress=False)
    assert not cached and len(count_trainings) == 2
    np.testing.assert_array_equal(second.loss, first.loss)
    np.testing.assert_array_equal(second.logits_at(2), first.logits_at(2))


def test_corrupt_cache_file_is_retrained(data, tmp_path, count_trainings):
    path = cache_path(tmp_path, data, SMALL, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz")
    _, _, cached = run_proxy(data, SMALL, seed=0, cache_dir=tmp_path, progress=False)
    assert not cached and len(count_trainings) == 1
    assert load_dynamics(path, len(data)).n == 60


def test_key_changes_with_seed_recipe_epochs_and_data(data):
    key = SMALL.key(data, 0)
    assert key == ProxyConfig(model="resnet18", width=8, recipe=TrainConfig(epochs=2, batch_size=32), record_epochs=(2, 0)).key(data, 0)
    others = {
        SMALL.key(data, 1),
        replace(SMALL, recipe=replace(SMALL.recipe, lr=0.05)).key(data, 0),
        replace(SMALL, record_epochs=(2,)).key(data, 0),
        replace(SMALL, width=16).key(data, 0),
        SMALL.key(load_dataset("digits", limit=60, seed=1), 0),
    }
    assert key not in others and len(others) == 5
    # the recipe's own seed field is replaced by the proxy seed: it does not split the cache
    assert replace(SMALL, recipe=replace(SMALL.recipe, seed=7)).key(data, 0) == key


def test_interrupted_run_resumes_to_the_same_record(data, tmp_path, monkeypatch):
    clear_memory_cache()
    reference, _, _ = run_proxy(data, SMALL, seed=3, cache_dir=tmp_path / "a", progress=False)
    clear_memory_cache()

    class Crash(TrainHook):
        def on_epoch_end(self, epoch, model):
            if epoch == 1:
                raise KeyboardInterrupt

    original = loop.train
    monkeypatch.setattr(loop, "train", lambda m, d, c, *, hooks, **kw: original(m, d, c, hooks=[*hooks, Crash()], **kw))
    with pytest.raises(KeyboardInterrupt):
        run_proxy(data, SMALL, seed=3, cache_dir=tmp_path / "b", progress=False)
    run_dir = cache_path(tmp_path / "b", data, SMALL, 3).with_suffix(".run")
    assert (run_dir / "checkpoint.pt").exists()
    monkeypatch.setattr(loop, "train", original)
    resumed, _, cached = run_proxy(data, SMALL, seed=3, cache_dir=tmp_path / "b", progress=False)
    assert not cached and not run_dir.exists()
    np.testing.assert_allclose(resumed.loss, reference.loss, rtol=1e-6)
    np.testing.assert_array_equal(resumed.correct, reference.correct)
    np.testing.assert_allclose(resumed.logits_at(2), reference.logits_at(2), rtol=1e-5, atol=1e-6)
    clear_memory_cache()


def _sized(n, image_size):
    return type("Sized", (), {"image_size": image_size, "__len__": lambda self: n})()


def test_default_config_by_dataset_size():
    small = default_proxy_config(_sized(1437, 8))
    assert (small.width, small.recipe.epochs, small.record_epochs) == (8, 10, (0, 2, 5, 10))
    mid = default_proxy_config(_sized(60_000, 28))
    assert (mid.width, mid.recipe.epochs, mid.record_epochs) == (16, 6, (0, 1, 3, 6))
    big = default_proxy_config(_sized(1_281_167, 32))
    assert (big.width, big.recipe.epochs, big.record_epochs) == (16, 4, (0, 1, 2, 4))


def test_early_epoch_and_proxy_seeds():
    assert early_epoch([2, 5, 10]) == 2 and early_epoch([1, 2, 3]) == 1 and early_epoch([0, 2]) == 2
    assert early_epoch([0, 1, 20, 100]) == 20  # 20 % of 100
    assert proxy_seed(4, 0) == 4
    assert proxy_seed(4, 1) != proxy_seed(4, 2) and proxy_seed(4, 1) >= 2**31  # never another selection's run 0


def test_bad_record_epochs_refused(data):
    with pytest.raises(InputError, match="record_epochs"):
        run_proxy(data, replace(SMALL, record_epochs=(5,)), seed=0, progress=False)


# --- user dynamics ---------------------------------------------------------------------------
def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


def _good(n=4, epochs=3):
    return {"loss": np.ones((epochs, n), np.float32), "correct": np.ones((epochs, n), bool)}


def test_good_user_dynamics_round_trip(tmp_path):
    prob_margin = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    path = _save(tmp_path / "d.npz", **_good(), logits_2=np.zeros((4, 2), np.float32), labels=np.array([0, 1, 0, 1]),
                 prob_margin=prob_margin, lr=np.array([0.1, 0.05, 0.0]))
    record = load_dynamics(path, 4, labels=np.array([0, 1, 0, 1]), num_classes=2)
    assert record.epochs == 3 and record.logit_epochs == [2] and record.source == str(path)
    record.save(tmp_path / "again.npz")
    again = load_dynamics(tmp_path / "again.npz", 4)
    assert again.logit_epochs == [2] and again.lr.tolist() == [0.1, 0.05, 0.0]
    np.testing.assert_array_equal(again.prob_margin, prob_margin)


@pytest.mark.parametrize(
    "arrays, field, message",
    [
        ({"loss": np.ones((3, 4))}, "correct", "missing"),
        ({**_good(n=5)}, "loss", "5 samples"),
        ({**_good(), "loss": np.full((3, 4), np.nan)}, "loss", "NaN"),
        ({**_good(), "correct": np.ones((2, 4), bool)}, "correct", "shape"),
        ({**_good(), "correct": np.full((3, 4), 2)}, "correct", "0/1"),
        ({**_good(), "logits_2": np.zeros((3, 2))}, "logits_2", "one row per sample"),
        ({**_good(), "logits_9": np.zeros((4, 2))}, "logits_9", "epoch 9"),
        ({**_good(), "logits_1": np.zeros((4, 3))}, "logits_1", "3 columns"),
        ({**_good(), "features_1": np.zeros((4, 2), int)}, "features_1", "float"),
        ({**_good(), "margin": np.zeros((3, 5))}, "margin", "shape"),
        ({**_good(), "prob_margin": np.zeros((2, 4))}, "prob_margin", "shape"),
        ({**_good(), "prob_margin": np.full((3, 4), 1.5)}, "prob_margin", "[-1, 1]"),
        ({**_good(), "lr": np.ones(2)}, "lr", "one learning rate per epoch"),
        ({**_good(), "lr": np.array([0.1, -0.1, 0.1])}, "lr", "negative learning rate"),
        ({**_good(), "lr": np.array([0.1, np.inf, 0.1])}, "lr", "NaN/inf"),
        ({**_good(), "labels": np.array([1, 1, 0, 1])}, "labels", "disagree"),
    ],
)
def test_bad_user_dynamics_name_file_and_field(tmp_path, arrays, field, message):
    path = _save(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError) as err:
        load_dynamics(path, 4, labels=np.array([0, 1, 0, 1]), num_classes=2)
    text = str(err.value)
    assert str(path) in text and f"'{field}'" in text and message in text, text


def test_unreadable_unknown_or_missing_dynamics_refused(tmp_path):
    with pytest.raises(InputError, match="nope.npz: dynamics file not found"):
        load_dynamics(tmp_path / "nope.npz", 4)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.npz: not a readable"):
        load_dynamics(tmp_path / "junk.npz", 4)
    (tmp_path / "zip.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(InputError, match="zip.npz: not a readable"):
        load_dynamics(tmp_path / "zip.npz", 4)
    path = _save(tmp_path / "objects.npz", **_good(), labels=np.array([{"a": 1}] * 4, dtype=object))
    with pytest.raises(InputError, match="objects.npz: field 'labels' is not a plain numeric array"):
        load_dynamics(path, 4)
    path = _save(tmp_path / "typo.npz", **_good(), logit_2=np.zeros((4, 2)))
    with pytest.raises(InputError, match=r"typo.npz: unknown field\(s\) \['logit_2'\]"):
        load_dynamics(path, 4)


def test_wrong_sized_record_refused_by_methods():
    from rlselector import select

    record = ProxyRecord(loss=np.ones((2, 3)), correct=np.ones((2, 3), bool), source="short.npz")
    with pytest.raises(InputError, match="short.npz: field 'loss' holds 3 samples"):
        select(toy_dataset([0, 1, 0, 1]), method="forgetting", ratio=0.5, dynamics=record, progress=False)
