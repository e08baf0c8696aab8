"""Approximate cover for large classes: the faiss IVF back end against the exact blocks, a setting
that must lose neighbours, the size threshold, sampled ε, and the fallback without faiss."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from rlselector import cover as cover_module
from rlselector.cover import IVFSettings, cover, epsilon
from rlselector.errors import InputError

needs_faiss = pytest.mark.skipif(
    cover_module._faiss() is None, reason="faiss is an optional dependency (pip install 'rlselector[faiss]'); not installed here"
)


def clustered(n: int, d: int, seed: int) -> torch.Tensor:
    """20 tight Gaussian clusters: low intrinsic scale against the spread, as penultimate features are."""
    generator = torch.Generator().manual_seed(seed)
    centres = 4.0 * torch.randn(20, d, generator=generator)
    return centres[torch.randint(0, 20, (n,), generator=generator)] + torch.randn(n, d, generator=generator)


def recall(approximate, exact) -> float:
    """Share of the exact ε-neighbour pairs the approximate counts keep (the IVF's sets are subsets)."""
    a, e = approximate.degree.numpy(), exact.degree.numpy()
    return float(np.minimum(a, e).sum() / e.sum())


@pytest.fixture(scope="module")
def data():
    features, labels = clustered(3000, 16, seed=0), torch.arange(3000) % 2
    eps = epsilon(features, labels)
    return features, labels, eps, cover(features, labels, eps, backend="exact")


@needs_faiss
@pytest.mark.parametrize("set_aware", [False, True])
def test_faiss_agrees_with_exact_on_clustered_features(data, set_aware):
    features, labels, eps, exact = data
    kept = torch.rand(3000, generator=torch.Generator().manual_seed(1)) < 0.5 if set_aware else None
    if set_aware:
        exact = cover(features, labels, eps, kept=kept, backend="exact")
    approximate = cover(features, labels, eps, kept=kept, backend="faiss", approximate_above=1000)
    assert recall(approximate, exact) >= 0.95
    assert bool((approximate.degree <= exact.degree).all())  # an IVF only skips cells: never more neighbours
    assert spearmanr(approximate.degree, exact.degree)[0] >= 0.95
    assert float((approximate.nn_index == exact.nn_index).double().mean()) >= 0.95
    close = approximate.nn_index == exact.nn_index
    assert torch.allclose(approximate.nn_distance[close], exact.nn_distance[close], rtol=1e-5)
    assert torch.equal(approximate.epsilon, exact.epsilon)


@needs_faiss
def test_one_probe_of_many_lists_loses_neighbours(data):
    features, labels, eps, exact = data
    broken = cover(features, labels, eps, backend="faiss", approximate_above=1000, ivf=IVFSettings(nlist=100, nprobe=1))
    assert recall(broken, exact) < 0.7


@needs_faiss
def test_classes_at_or_below_the_threshold_stay_exact(data):
    features, labels, eps, exact = data
    for backend in ("auto", "faiss"):
        same = cover(features, labels, eps, backend=backend, approximate_above=1500)  # classes of 1500
        assert torch.equal(same.degree, exact.degree) and torch.equal(same.nn_distance, exact.nn_distance)
    assert torch.equal(cover(features, labels, eps, backend="exact", approximate_above=1).degree, exact.degree)


@needs_faiss
def test_sampled_epsilon_of_a_large_class(data):
    features, labels, eps, _ = data
    for rule, tolerance in (("quantile", 0.03), ("mean", 0.01), ("nn-median", 1e-5)):
        exact = epsilon(features, labels, rule=rule, backend="exact")
        approximate = epsilon(features, labels, rule=rule, approximate_above=1000)
        assert approximate == pytest.approx(exact, rel=tolerance)
        assert approximate != exact or rule == "nn-median"  # estimated, not the exact pass
    assert epsilon(features, labels) == eps  # default threshold: classes of 1500 stay exact


def test_without_faiss_auto_counts_exactly_with_a_warning(data, monkeypatch, caplog):
    features, labels, eps, exact = data
    monkeypatch.setattr(cover_module, "_faiss", lambda: None)
    with caplog.at_level(logging.WARNING, logger="rlselector.cover"):
        fallback = cover(features, labels, eps, approximate_above=1000)
    assert torch.equal(fallback.degree, exact.degree)
    assert "faiss is not installed" in caplog.text and "class 1 has 1500 samples" in caplog.text
    with pytest.raises(InputError, match="needs faiss"):
        cover(features, labels, eps, backend="faiss")


def test_bad_backend_settings_raise_input_error(data):
    features, labels, eps, _ = data
    with pytest.raises(InputError, match="unknown backend"):
        cover(features, labels, eps, backend="hnsw")
    with pytest.raises(InputError, match="approximate_above"):
        epsilon(features, labels, approximate_above=0)
    with pytest.raises(InputError, match="target_recall"):
        IVFSettings(target_recall=0.0)
    with pytest.raises(InputError, match="nprobe must be ≥ 1"):
        IVFSettings(nprobe=0)


@needs_faiss
def test_gpu_quantizer_needs_a_gpu_build():
    if hasattr(cover_module._faiss(), "StandardGpuResources"):
        pytest.skip("a GPU build of faiss is installed; the CPU-only refusal cannot be seen")
    features, labels = clustered(400, 8, seed=2), torch.zeros(400, dtype=torch.long)
    with pytest.raises(InputError, match="GPU build"):
        cover(features, labels, 1.0, backend="faiss", approximate_above=100, ivf=IVFSettings(gpu=0))
