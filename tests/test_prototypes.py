import json
import math

import numpy as np
import pytest
import torch

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import load_dataset, select
from rlselector.methods.prototypes import prototype_distances
from rlselector.selection.ssl import SSLConfig, nt_xent, ssl_embeddings

# 1-D embeddings: k-means with k = 2 finds {0, 1} (centroid 0.5) and {10, 11, 13} (centroid 34/3)
LINE = np.array([[0.0], [1.0], [10.0], [11.0], [13.0]], dtype=np.float32)
LINE_DISTANCES = [0.5, 0.5, 4 / 3, 1 / 3, 5 / 3]


class TestPrototypes(MethodContract):
    raw_keep_direction = -1  # the raw score is the distance to the prototype; with scarce data (300 samples) the nearest are kept
    method = "prototypes"
    select_kwargs = {"features": digits_features()}


def test_euclidean_prototype_distances_by_hand():
    distance, centroids = prototype_distances(LINE, 2, metric="euclidean", seed=0)
    np.testing.assert_allclose(sorted(centroids.ravel()), [0.5, 34 / 3])
    np.testing.assert_allclose(distance, LINE_DISTANCES, rtol=1e-9)


def test_cosine_prototype_distances_ignore_the_norm():
    # directions 0° and 10° (lengths 1 and 5), and 80°, 90°, 100° (lengths 2, 3, 7): centroids of the unit
    # vectors point at 5° and 90°, so distances are 1 − cos 5° (twice), 1 − cos 10°, 0, 1 − cos 10°
    angles = np.radians([0.0, 10.0, 80.0, 90.0, 100.0])
    lengths = np.array([1.0, 5.0, 2.0, 3.0, 7.0])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1) * lengths[:, None]
    distance, _ = prototype_distances(x, 2, metric="cosine", seed=0)
    c5, c10 = 1 - math.cos(math.radians(5)), 1 - math.cos(math.radians(10))
    np.testing.assert_allclose(distance, [c5, c5, c10, 0.0, c10], atol=1e-12)


def test_hard_when_plentiful_easy_when_scarce():
    data = toy_dataset([0, 0, 1, 1, 1])  # 2 classes → k = 2 by default
    scarce = select(data, method="prototypes", ratio=0.4, features=LINE, metric="euclidean", progress=False)
    np.testing.assert_allclose(scarce.raw_scores, LINE_DISTANCES, rtol=1e-6)
    assert scarce.manifest["policy"] == "keep-lowest"
    np.testing.assert_array_equal(scarce.indices, [0, 3])  # 1/3, then the first of the ties at 0.5
    plentiful = select(data, method="prototypes", ratio=0.6, features=LINE, metric="euclidean", progress=False)
    assert plentiful.manifest["policy"] == "keep-highest"
    np.testing.assert_array_equal(plentiful.indices, [0, 2, 4])  # 5/3, 4/3, then the first 0.5
    # the threshold is a parameter
    moved = select(data, method="prototypes", ratio=0.6, features=LINE, metric="euclidean", hard_threshold=0.7, progress=False)
    assert moved.manifest["policy"] == "keep-lowest"


def test_nt_xent_by_hand():
    # two orthogonal unit views, each identical to its partner, τ = 1: row 0 sees logits (−inf, 0, 1, 0)
    # with its partner at position 2 → loss = log(2 + e) − 1 for every row
    z = torch.eye(2)
    assert math.isclose(float(nt_xent(z, z.clone(), 1.0)), math.log(2 + math.e) - 1, rel_tol=1e-6)


def test_self_supervised_embeddings_are_seeded_and_cached(tmp_path):
    data = load_dataset("digits", limit=64, seed=0)
    config = SSLConfig(epochs=1, width=4, batch_size=32)
    first, trained_seconds, cached = ssl_embeddings(data, config, seed=0, progress=False, cache_dir=tmp_path)
    assert first.shape == (64, 32) and first.dtype == np.float32 and np.isfinite(first).all() and not cached
    again, _, _ = ssl_embeddings(data, config, seed=0, progress=False)
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)
    reused, seconds, cached = ssl_embeddings(data, config, seed=0, progress=False, cache_dir=tmp_path)
    assert cached and seconds == trained_seconds > 0  # the stored training time, charged to a reusing selection
    np.testing.assert_array_equal(reused, first)
    other, _, _ = ssl_embeddings(data, config, seed=1, progress=False)
    assert not np.allclose(other, first)


def test_prototypes_without_features_trains_its_own_encoder():
    data = load_dataset("digits", limit=64, seed=0)
    sel = select(data, method="prototypes", ratio=0.5, ssl_epochs=1, ssl_width=4, ssl_batch_size=32, progress=False)
    assert sel.manifest["n_kept"] == 32
    assert sel.manifest["embedding"] == "ssl" and sel.manifest["timings"]["ssl_s"] > 0


def test_self_supervised_training_subset_is_seeded():
    data = load_dataset("digits", limit=64, seed=0)
    config = SSLConfig(epochs=1, width=4, batch_size=16, max_samples=32)
    first, _, _ = ssl_embeddings(data, config, seed=3, progress=False)
    again, _, _ = ssl_embeddings(data, config, seed=3, progress=False)
    assert first.shape == (64, 32)  # trained on 32 images, every image embedded
    np.testing.assert_array_equal(first, again)


def test_self_supervised_encoder_trains_through_the_loop_and_resumes(tmp_path, monkeypatch):
    """The encoder trains in rlselector.train (Adam, NT-Xent objective): a checkpoint per epoch in the
    work directory, and an interrupted run resumed gives the embeddings of an uninterrupted one."""
    from rlselector.selection import ssl
    from rlselector.train import TrainHook

    data = load_dataset("digits", limit=64, seed=0)
    config = SSLConfig(epochs=3, width=4, batch_size=16, max_samples=48)
    before = torch.get_rng_state()
    whole, _, _ = ssl_embeddings(data, config, seed=2, progress=False)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's generator is untouched

    class Crash(TrainHook):
        def on_epoch_end(self, epoch, model):
            if epoch == 1:
                raise KeyboardInterrupt

    loop_train = ssl.train
    monkeypatch.setattr(ssl, "train", lambda *a, **kw: loop_train(*a, hooks=[Crash()], **kw))
    with pytest.raises(KeyboardInterrupt):
        ssl_embeddings(data, config, seed=2, progress=False, workdir=tmp_path)
    monkeypatch.setattr(ssl, "train", loop_train)
    log = tmp_path / "ssl" / "log.jsonl"
    assert (tmp_path / "ssl" / "checkpoint.pt").exists() and len(log.read_text().splitlines()) == 1
    resumed, _, _ = ssl_embeddings(data, config, seed=2, progress=False, workdir=tmp_path, resume=True)
    np.testing.assert_array_equal(resumed, whole)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3] and "train_acc" not in records[0]  # no labels, no accuracy
