import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.ccs import aum, ccs_select, strata_score
from rlselector.selection.policies import cutoff_rate, top_k
from rlselector.selection.dynamics import ProxyRecord


class TestCCS(MethodContract):
    min_raw_auc = 0.6  # coverage-centric: strata over the whole score range, so only loosely by score (measured 0.71)
    method = "ccs"
    select_kwargs = {"proxy_config": TINY_PROXY}

    def test_mask_applied_at_this_pruning_rate(self, data, selection):
        # ratio 0.3 = 70 % pruned → β = 0.1 → 30 of 300 masked, none of them kept
        assert selection.manifest["beta"] == 0.1 and selection.manifest["masked"] == 30
        lowest_aum = np.argsort(selection.raw_scores, kind="stable")[:30]  # strata score AUM
        assert not np.isin(lowest_aum, selection.indices).any()

    @pytest.mark.parametrize("score", ["forgetting", "el2n"])
    def test_other_scores(self, data, score):
        sel = self.run(data, score=score)
        assert len(sel.indices) == round(self.ratio * len(data))


def test_default_beta_follows_the_pruning_rate():
    assert [cutoff_rate(r) for r in (0.9, 0.7, 0.5, 0.3, 0.2, 0.1)] == [0.0, 0.0, 0.0, 0.1, 0.1, 0.3]


def test_mask_then_strata_by_hand():
    # 90 easy (0.0), 10 medium (1.0), 5 hardest (5.0) at indices 100..104; β·N = 5/105·105 = 5 masked
    hardness = np.concatenate([np.zeros(90), np.ones(10), np.full(5, 5.0)])
    kept, priority, masked = ccs_select(-hardness, hardness, 20, 5 / 105, np.random.default_rng(0))
    np.testing.assert_array_equal(masked, np.arange(100, 105))
    # the rest spans [0, 1]: two non-empty strata; the sparse one (10) is filled first with 20 // 2 = 10
    assert len(kept) == 20 and not np.isin(kept, masked).any()
    assert ((kept >= 90) & (kept < 100)).sum() == 10
    np.testing.assert_array_equal(top_k(priority, 20), kept)
    assert priority[masked].max() < priority[np.setdiff1d(np.arange(105), masked)].min()


def test_mask_never_eats_into_the_budget():
    kept, _, masked = ccs_select(-np.arange(10.0), np.arange(10.0), 8, 0.5, np.random.default_rng(0))
    # β·N = 5 but only 10 − 8 = 2 may go: the two hardest (8, 9)
    np.testing.assert_array_equal(masked, [8, 9])
    np.testing.assert_array_equal(kept, np.arange(8))


def test_class_balanced_mask_is_per_class():
    labels = np.array([0] * 10 + [1] * 10)
    hardness = np.concatenate([np.arange(10.0), np.arange(10.0) + 100])  # class 1 is harder everywhere
    kept, _, masked = ccs_select(-hardness, hardness, 10, 0.2, np.random.default_rng(0), labels=labels, num_classes=2)
    # per class the hardest 2: 8, 9 and 18, 19 (a global mask would take 4 from class 1)
    np.testing.assert_array_equal(masked, [8, 9, 18, 19])
    np.testing.assert_array_equal(np.bincount(labels[kept]), [5, 5])


def test_aum_is_the_summed_probability_margin_and_drives_the_mask():
    # prob margins p_y − max_{k≠y} p_k over 2 epochs; the logit margin would rank sample 2 lowest
    prob_margin = np.array([[0.9, -0.5, 0.1], [0.8, -0.3, 0.2]])
    margin = np.array([[5.0, -1.0, -9.0], [5.0, -1.0, -9.0]])
    correct = np.array([[1, 0, 1], [1, 0, 0]], dtype=bool)
    record = ProxyRecord(loss=np.zeros((2, 3)), correct=correct, margin=margin, prob_margin=prob_margin, logits={1: np.zeros((3, 2))})
    labels = np.array([0, 1, 0])
    np.testing.assert_allclose(aum(record), [1.7, -0.8, 0.3])
    np.testing.assert_allclose(strata_score(record, labels, "aum"), [1.7, -0.8, 0.3])
    np.testing.assert_array_equal(strata_score(record, labels, "forgetting"), [0, 0, 1])  # never learned: 0, as released
    np.testing.assert_allclose(strata_score(record, labels, "el2n"), np.full(3, np.sqrt(0.5)))
    # β = 1/3: the one masked sample is the lowest AUM (1), whichever score the strata use
    data = toy_dataset(labels)
    for score in ("aum", "forgetting"):
        sel = select(data, method="ccs", ratio=1 / 3, dynamics=record, score=score, beta=1 / 3, progress=False)
        assert sel.manifest["masked"] == 1 and sel.scores[1] == sel.scores.min() < 0 and 1 not in sel.indices


def test_select_matches_the_released_procedure_on_fixed_inputs():
    # the released mask and strata budgets (bin_allocate), written out: same mask, same per-stratum counts
    rng = np.random.default_rng(0)
    n, epochs = 400, 5
    prob_margin = np.clip(rng.normal(0.3, 0.5, size=(epochs, n)), -1, 1)
    record = ProxyRecord(loss=np.zeros((epochs, n)), correct=np.ones((epochs, n), dtype=bool), prob_margin=prob_margin)
    sel = select(toy_dataset(np.zeros(n, dtype=np.int64)), method="ccs", ratio=0.1, seed=0, dynamics=record, progress=False)
    accumulated = prob_margin.sum(0)
    easy = np.argsort(accumulated, kind="stable")[int(0.3 * n):]
    np.testing.assert_array_equal(np.sort(np.flatnonzero(sel.scores < 0)), np.sort(np.setdiff1d(np.arange(n), easy)))
    score = accumulated[easy]
    low, step = score.min(), (score.max() * 1.0001 - score.min()) / 50
    stratum = np.minimum(((score - low) // step).astype(int), 49)
    counts = np.bincount(stratum, minlength=50)
    budgets, rest = np.zeros(50, dtype=int), int(0.1 * n)
    for i, b in enumerate(np.argsort(counts, kind="stable")):
        budgets[b] = min(counts[b], rest // (50 - i))
        rest -= budgets[b]
    ours = np.bincount(np.minimum(((accumulated[sel.indices] - low) // step).astype(int), 49), minlength=50)
    assert np.abs(ours - budgets).sum() <= 2  # the top edge: max here, the released max·1.0001


def test_aum_needs_prob_margin_in_user_dynamics(tmp_path):
    data = toy_dataset([0, 1, 0, 1])
    record = ProxyRecord(loss=np.zeros((2, 4)), correct=np.ones((2, 4), dtype=bool), source="mine.npz")
    with pytest.raises(InputError, match="mine.npz.*'prob_margin'"):
        select(data, method="ccs", ratio=0.5, dynamics=record, progress=False)
    with pytest.raises(InputError, match="mine.npz.*'prob_margin'"):  # the mask needs AUM whatever the strata score
        select(data, method="ccs", ratio=0.5, dynamics=record, score="forgetting", progress=False)
    record.prob_margin = np.zeros((2, 4))
    sel = select(data, method="ccs", ratio=0.5, dynamics=record, score="forgetting", progress=False)
    assert len(sel.indices) == 2
