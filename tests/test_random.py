import numpy as np

from method_contract import MethodContract
from rlselector import select
from rlselector.selection.policies import apply_policy, class_quotas, top_k


class TestRandom(MethodContract):
    min_raw_auc = None  # a uniform draw: there is no score to explain it (measured 0.50)
    method = "random"

    def test_other_seed_other_selection(self, data, selection):
        other = self.run(data, seed=1)
        assert not np.array_equal(other.indices, selection.indices)


def test_top_k_ties_go_to_lower_index():
    np.testing.assert_array_equal(top_k(np.array([1.0, 3.0, 3.0, 2.0, 3.0]), 2), [1, 2])


def test_class_quotas_sum_exactly_and_follow_sizes():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 2)
    # 0.5 · (5, 3, 2) = (2.5, 1.5, 1.0): floors (2, 1, 1), one left goes to the largest remainder (class 0)
    np.testing.assert_array_equal(class_quotas(labels, 5, 3), [3, 1, 1])


def test_policies_by_hand():
    scores = np.array([0.1, 0.9, 0.5, 0.4, 0.7])
    rng = np.random.default_rng(0)
    assert list(apply_policy("keep-highest", scores, 2, rng)[0]) == [1, 4]
    assert list(apply_policy("keep-lowest", scores, 2, rng)[0]) == [0, 3]
    # median 0.5: distances 0.4, 0.4, 0, 0.1, 0.2 → the two closest are indices 2 and 3
    assert list(apply_policy("band", scores, 2, rng)[0]) == [2, 3]


def test_stratified_takes_from_every_stratum():
    scores = np.concatenate([np.zeros(90), np.ones(10)])  # two strata: a big one and a small one
    kept, priority = apply_policy("stratified", scores, 20, np.random.default_rng(0))
    # the sparse stratum is filled first with an equal share (10 each), not in proportion (18/2)
    assert (kept >= 90).sum() == 10 and len(kept) == 20
    np.testing.assert_array_equal(top_k(priority, 20), kept)


def test_random_is_uniform_over_classes(digits):
    sel = select(digits, method="random", ratio=0.5, seed=3, progress=False)
    assert sel.manifest["n_kept"] == round(0.5 * len(digits))
