"""Dunn index (paper §5.4): hand-computed toys, blockwise = brute force, sampling."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from rlselector.bench.analysis import dunn_index, sampled_dunn, selection_dunn
from rlselector.errors import InputError


def test_dunn_index_of_a_hand_computed_toy():
    # class 0 at x = 0 and 1, class 1 at x = 4 and 6: δ(0, 1) = 4 − 1 = 3; Δ(0) = 1, Δ(1) = 2 → DI = 3 / 2
    x = np.array([[0.0], [4.0], [1.0], [6.0]])
    assert dunn_index(x, np.array([0, 1, 0, 1])) == pytest.approx(1.5)
    # a third class {(10, 0), (10, 3), (14, 0)}: pair distances 3, 4, 5 → Δ = 4; nearest to class 1 is 10 − 6 = 4
    x3 = np.array([[0, 0], [1, 0], [4, 0], [6, 0], [10, 0], [10, 3], [14, 0]], dtype=float)
    y3 = np.array([0, 0, 1, 1, 2, 2, 2])
    assert dunn_index(x3, y3) == pytest.approx(3 / 4)
    # a singleton class has no intra-class pair: it only enters δ
    assert dunn_index(np.array([[0.0], [2.0], [7.0]]), np.array([0, 0, 1])) == pytest.approx(5 / 2)


def _brute_force(x, y):
    d = cdist(x, x)
    classes = np.unique(y)
    delta = min(d[np.ix_(y == a, y == b)].min() for a, b in itertools.combinations(classes, 2))
    spread = max(d[np.ix_(y == k, y == k)][np.triu_indices((y == k).sum(), 1)].mean() for k in classes if (y == k).sum() > 1)
    return delta / spread


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_blockwise_equals_brute_force(block):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, size=203)
    x = rng.normal(size=(203, 6)) + 3 * y[:, None]
    assert dunn_index(x, y, block=block) == pytest.approx(_brute_force(x, y), rel=1e-10)


def test_sampling_and_equal_size_comparison():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=500)
    x = rng.normal(size=(500, 4)) + 4 * y[:, None]
    assert sampled_dunn(x, y, 1000, seed=0) == dunn_index(x, y)  # no sampling when the set is small
    assert sampled_dunn(x, y, 100, seed=3) == sampled_dunn(x, y, 100, seed=3)  # seeded
    kept = np.sort(rng.choice(500, size=200, replace=False))
    result = selection_dunn(x, y, kept, max_samples=150, seed=0)
    assert result["points"] == 150
    assert result["dunn_full"] == sampled_dunn(x, y, 150, seed=0)
    assert result["dunn_selected"] == sampled_dunn(x[kept], y[kept], 150, seed=0)
    assert result["change_pct"] == pytest.approx(100 * (result["dunn_selected"] / result["dunn_full"] - 1))
    assert result["dunn_whole"] == sampled_dunn(x, y, 150, seed=0)  # the whole set, sampled to max_samples
    assert result["change_whole_pct"] == pytest.approx(100 * (result["dunn_selected"] / result["dunn_whole"] - 1))
    whole = selection_dunn(x, y, kept, max_samples=1000, seed=0)  # nothing sampled: 200 kept against all 500
    assert whole["dunn_whole"] == dunn_index(x, y) and whole["dunn_full"] == sampled_dunn(x, y, 200, seed=0)
    assert whole["change_whole_pct"] == pytest.approx(100 * (dunn_index(x[kept], y[kept]) / dunn_index(x, y) - 1))


def test_dunn_index_refuses_one_class():
    with pytest.raises(InputError, match="two classes"):
        dunn_index(np.zeros((4, 2)), np.zeros(4, dtype=int))
