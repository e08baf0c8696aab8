"""ε-sample cover: brute-force equality, ties at ε, blocking, set-aware counts, ε rules, input errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlselector.cover import cover, epsilon, greedy_set_aware_prune, redundancy_rank
from rlselector.errors import InputError


def brute_force_degree(features: np.ndarray, labels: np.ndarray, squared_eps: dict[int, float], kept=None) -> np.ndarray:
    """Eq. 6 by definition, with exact squared distances (integer features keep them exact)."""
    n = len(labels)
    kept = np.ones(n, dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    degree = np.zeros(n)
    for i in range(n):
        same = labels == labels[i]
        squared = ((features - features[i]) ** 2).sum(1)
        within = same & kept & (squared <= squared_eps[int(labels[i])])
        within[i] = False
        degree[i] = within.sum() / (same.sum() - 1)
    return degree


@pytest.fixture
def grid_data():
    """Integer features in {0, 1, 2}^3: many pairs at exactly distance 1, √2, √3 (ties at ε)."""
    rng = np.random.default_rng(0)
    features = rng.integers(0, 3, size=(60, 3)).astype(np.float64)
    labels = rng.integers(0, 3, size=60)
    return features, labels


@pytest.mark.parametrize("squared_eps", [0, 1, 2, 3, 5])
def test_degree_equals_brute_force_with_ties_at_eps(grid_data, squared_eps):
    features, labels = grid_data
    eps = {k: math.sqrt(squared_eps) for k in range(3)}
    expected = brute_force_degree(features, labels, {k: squared_eps for k in range(3)})
    # The grid puts many pairs at exactly ε, so a count that missed ties would differ here.
    assert np.array_equal(cover(features, labels, eps).degree.numpy(), expected)


def test_ties_at_eps_count_on_a_scale_floats_cannot_represent():
    # Steps of 0.1 are not exact in binary; the pairs one step apart lie at ε = 0.1 in real numbers.
    features = 0.1 * np.arange(6, dtype=np.float64)[:, None] + 3.7
    labels = np.zeros(6, dtype=int)
    degree = cover(features, labels, 0.1).degree.numpy()
    assert np.allclose(degree, np.array([1, 2, 2, 2, 2, 1]) / 5, atol=0)


def test_per_class_eps_and_float32_input(grid_data):
    features, labels = grid_data
    squared = {0: 1, 1: 2, 2: 3}
    eps = {k: math.sqrt(v) for k, v in squared.items()}
    expected = brute_force_degree(features, labels, squared)
    got = cover(torch.tensor(features, dtype=torch.float32), torch.tensor(labels), eps).degree
    assert np.array_equal(got.numpy(), expected)


def test_half_precision_input_counts_as_its_values_in_float64():
    # Features keep their dtype until one class is widened: a float16 tensor (a bank's storage) gives
    # the cover of the same values in float64, not of a lossy intermediate.
    generator = torch.Generator().manual_seed(4)
    half = (3.0 * torch.randn(200, 12, generator=generator)).half()
    labels = torch.arange(200) % 3
    eps = epsilon(half, labels, quantile=0.05)
    assert eps == epsilon(half.double(), labels, quantile=0.05)
    got, expected = cover(half, labels, eps), cover(half.double(), labels, eps)
    assert torch.equal(got.degree, expected.degree) and torch.equal(got.nn_distance, expected.nn_distance)
    assert float(got.degree.mean()) > 0


@pytest.mark.parametrize("block_size", [1, 3, 7, 16, 1000])
def test_blocked_equals_unblocked(block_size):
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(90, 8, generator=generator)
    labels = torch.randint(0, 4, (90,), generator=generator)
    kept = torch.rand(90, generator=generator) < 0.6
    eps = epsilon(features, labels, rule="quantile", quantile=0.2)
    whole = cover(features, labels, eps, kept=kept, block_size=10_000)
    blocked = cover(features, labels, eps, kept=kept, block_size=block_size)
    assert torch.equal(whole.degree, blocked.degree)  # counts are exact whatever the block shape
    # Matrix-product rounding depends on the block shape; distances agree to float64 precision.
    assert torch.allclose(whole.nn_distance, blocked.nn_distance, rtol=1e-12, atol=0)


@pytest.mark.parametrize("rule", ["mean", "quantile", "nn-median"])
def test_eps_rules_do_not_depend_on_block_size(rule):
    # The mean sums blocks in a different order, hence a tolerance instead of equality.
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(70, 5, generator=generator)
    labels = torch.randint(0, 2, (70,), generator=generator)
    reference = epsilon(features, labels, rule=rule, quantile=0.05, block_size=10_000)
    for block_size in (1, 4, 33):
        got = epsilon(features, labels, rule=rule, quantile=0.05, block_size=block_size)
        assert got == pytest.approx(reference, rel=1e-12)


def test_set_aware_degree_and_nearest_kept_by_hand():
    features = np.array([[0.0], [1.0], [2.0], [10.0]])
    labels = np.zeros(4, dtype=int)
    plain = cover(features, labels, 1.0)
    assert plain.degree.tolist() == pytest.approx([1 / 3, 2 / 3, 1 / 3, 0.0])
    assert plain.nn_distance.tolist() == pytest.approx([1.0, 1.0, 1.0, 8.0])
    assert plain.nn_index.tolist()[2:] == [1, 2]
    assert int(plain.nn_index[1]) in (0, 2)  # two nearest at distance 1: either is right
    # Sample 1 pruned: 0 and 2 lose their only neighbour; 1 still sees both kept ones.
    aware = cover(features, labels, 1.0, kept=[1, 0, 1, 1])
    assert aware.degree.tolist() == pytest.approx([0.0, 2 / 3, 0.0, 0.0])
    assert aware.nn_distance.tolist() == pytest.approx([2.0, 1.0, 2.0, 8.0])
    assert [int(aware.nn_index[i]) for i in (0, 2, 3)] == [2, 0, 2] and int(aware.nn_index[1]) in (0, 2)
    assert torch.equal(aware.degree, cover(features, labels, 1.0, kept=torch.tensor([True, False, True, True])).degree)


def test_set_aware_equals_brute_force(grid_data):
    features, labels = grid_data
    kept = np.random.default_rng(3).random(60) < 0.5
    expected = brute_force_degree(features, labels, {k: 2 for k in range(3)}, kept=kept)
    assert np.array_equal(cover(features, labels, math.sqrt(2), kept=kept).degree.numpy(), expected)


def test_eps_rules_by_hand():
    # Class 0 on a line at 0, 1, 3, 6: pair distances 1, 2, 3, 3, 5, 6 (mean 20/6); nearest
    # neighbours 1, 1, 2, 3. Class 7: one pair at distance 2.
    features = np.array([[0.0], [1.0], [3.0], [6.0], [0.0], [2.0]])
    labels = np.array([0, 0, 0, 0, 7, 7])
    assert epsilon(features, labels, rule="mean") == pytest.approx({0: 20 / 6, 7: 2.0})
    assert epsilon(features, labels, rule="median") == pytest.approx({0: 3.0, 7: 2.0})
    # Inverse CDF: the smallest distance with at least a share q of the pairs at or below it.
    assert epsilon(features, labels, rule="quantile", quantile=0.01) == pytest.approx({0: 1.0, 7: 2.0})
    assert epsilon(features, labels, rule="quantile", quantile=1 / 3) == pytest.approx({0: 2.0, 7: 2.0})
    assert epsilon(features, labels, rule="quantile", quantile=0.34) == pytest.approx({0: 3.0, 7: 2.0})
    assert epsilon(features, labels, rule="quantile", quantile=1.0) == pytest.approx({0: 6.0, 7: 2.0})
    assert epsilon(features, labels, rule="nn-median") == pytest.approx({0: 1.0, 7: 2.0})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quantile_is_exact_when_the_pivot_sample_only_brackets_it(seed):
    """300 samples per class = 44,850 pairs > 4 × 100 pivot pairs: the bracketed pass runs (and with
    so few pivots it sometimes misses and widens). The answer must be the exact order statistic."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(600, 6, generator=generator, dtype=torch.float64)
    labels = torch.arange(2).repeat_interleave(300)
    for q in (0.001, 0.01, 0.3, 0.5, 0.99, 1.0):
        got = epsilon(features, labels, rule="quantile", quantile=q, pivot_pairs=100, seed=seed)
        for label in (0, 1):
            block = features[labels == label].numpy()
            distances = np.sqrt(((block[:, None] - block[None]) ** 2).sum(-1))[np.triu_indices(300, 1)]
            assert got[label] == pytest.approx(np.quantile(distances, q, method="inverted_cdf"), rel=1e-12)


def test_redundancy_rank_breaks_ties_by_nearest_neighbour_in_units_of_eps():
    # Class 0 (ε = 1): samples 0 and 1 cover each other; 2 and 3 are alone, 3 farther from anyone.
    # Class 1 (ε = 10): samples 4 and 5 are alone at 2 ε from each other.
    features = np.array([[0.0], [0.5], [3.0], [9.0], [100.0], [120.0]])
    labels = np.array([0, 0, 0, 0, 1, 1])
    result = cover(features, labels, {0: 1.0, 1: 10.0})
    assert result.degree.tolist() == pytest.approx([1 / 3, 1 / 3, 0, 0, 0, 0])
    # Least redundant first: 3 (nearest at 6 ε), then 2 (2.5 ε) and 4, 5 (2 ε, input order), then 0, 1.
    assert redundancy_rank(result).tolist() == pytest.approx([4 / 6, 5 / 6, 1 / 6, 0.0, 2 / 6, 3 / 6])


@pytest.mark.parametrize("round_size", [1, 4])
def test_greedy_set_aware_prune_keeps_one_of_each_mutual_pair(round_size):
    features = np.array([[0.0], [0.1], [5.0], [5.1], [10.0]])
    labels = np.zeros(5, dtype=int)
    kept = greedy_set_aware_prune(features, labels, 0.5, keep=3, round_size=round_size, seed=0)
    # Even when one round may prune all four covered samples, a partner whose nearest kept
    # neighbour went this round waits for the re-count, and is then uncovered.
    assert kept.sum() == 3 and kept[4]
    assert kept[0] != kept[1] and kept[2] != kept[3]
    assert torch.equal(kept, greedy_set_aware_prune(features, labels, 0.5, keep=3, round_size=round_size, seed=0))


@pytest.mark.parametrize("round_size", [1, 4])
def test_greedy_set_aware_prune_by_a_given_order(round_size):
    # Two mutual pairs (0, 1) and (2, 3) within ε = 0.5 and an outlier 4, pruned lowest value first:
    # the outlier has the lowest value but no kept neighbour covers it, so it goes last; 0 goes, then
    # its partner 1 is uncovered; 2 goes before 3. The plain top-3 of the values would keep 1, 2, 3.
    features = np.array([[0.0], [0.1], [5.0], [5.1], [10.0]])
    labels = np.zeros(5, dtype=int)
    values = torch.tensor([0.1, 0.2, 0.9, 0.95, 0.0])
    kept = greedy_set_aware_prune(features, labels, 0.5, keep=3, round_size=round_size, seed=0, prune_first=values)
    assert kept.tolist() == [False, True, False, True, True]
    with pytest.raises(InputError, match="prune_first"):
        greedy_set_aware_prune(features, labels, 0.5, keep=3, round_size=1, prune_first=values[:4])


def test_greedy_set_aware_prune_random_once_uncovered():
    # Pairs (0, 1) and (2, 3) within ε = 0.5, three isolated samples 4, 5, 6; keep 2, one per round.
    # Rounds 1-2 prune the lowest value among the covered: 0, then 2. Then nothing is covered and
    # the three remaining prunes follow the seeded random order, not the values (which would keep 5, 6).
    features = np.array([[0.0], [0.1], [5.0], [5.1], [10.0], [20.0], [30.0]])
    labels = np.zeros(7, dtype=int)
    values = torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    by_value = greedy_set_aware_prune(features, labels, 0.5, keep=2, round_size=1, seed=0, prune_first=values)
    assert by_value.nonzero().squeeze(1).tolist() == [5, 6]
    kept = greedy_set_aware_prune(features, labels, 0.5, keep=2, round_size=1, seed=0, prune_first=values, random_uncovered=True)
    rank = torch.randperm(7, generator=torch.Generator().manual_seed(0))  # the function's tie-break keys
    expected = sorted(sorted([1, 3, 4, 5, 6], key=lambda i: int(rank[i]))[-2:])
    assert kept.nonzero().squeeze(1).tolist() == expected == [3, 5]
    # Without a given order, degree and closeness tie inside each pair, so the random keys prune 1 and 3
    # first; then 6, 4 and 0 go in that same random order.
    plain = greedy_set_aware_prune(features, labels, 0.5, keep=2, round_size=1, seed=0, random_uncovered=True)
    assert rank.tolist() == [4, 0, 5, 3, 2, 6, 1]
    assert plain.nonzero().squeeze(1).tolist() == [2, 5]


@pytest.mark.parametrize(
    "features, labels, message",
    [
        (np.zeros((3, 2)), np.array([0, 0, 1]), "fewer than 2"),
        (np.array([[0.0], [np.nan], [1.0]]), np.zeros(3, dtype=int), "NaN or inf"),
        (np.array([[0.0], [np.inf], [1.0]]), np.zeros(3, dtype=int), "NaN or inf"),
        (np.zeros(4), np.zeros(4, dtype=int), "2-D"),
        (np.zeros((4, 2)), np.zeros(3, dtype=int), "one entry per feature row"),
        (np.zeros((4, 2)), np.zeros(4), "integer class ids"),
    ],
)
def test_bad_input_raises_input_error(features, labels, message):
    with pytest.raises(InputError, match=message):
        cover(features, labels, 1.0).degree
    with pytest.raises(InputError, match=message):
        epsilon(features, labels)


def test_bad_parameters_raise_input_error():
    features, labels = np.zeros((4, 2)), np.array([0, 0, 1, 1])
    with pytest.raises(InputError, match="no entry for class 1"):
        cover(features, labels, {0: 1.0}).degree
    with pytest.raises(InputError, match="finite and ≥ 0"):
        cover(features, labels, -1.0).degree
    with pytest.raises(InputError, match="shape"):
        cover(features, labels, 1.0, kept=[1, 0]).degree
    with pytest.raises(InputError, match="0/1"):
        cover(features, labels, 1.0, kept=[2, 0, 1, 1]).degree
    with pytest.raises(InputError, match="unknown rule"):
        epsilon(features, labels, rule="max")
    with pytest.raises(InputError, match="quantile"):
        epsilon(features, labels, quantile=0.0)
    with pytest.raises(InputError, match="block_size"):
        cover(features, labels, 1.0, block_size=0).degree
    with pytest.raises(InputError, match="keep"):
        greedy_set_aware_prune(features, labels, 1.0, keep=0, round_size=1)
