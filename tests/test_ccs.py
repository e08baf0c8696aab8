import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.ccs import ccs_select, default_beta, difficulty
from rlselector.selection.policies import top_k
from rlselector.selection.dynamics import ProxyRecord


class TestCCS(MethodContract):
    method = "ccs"
    select_kwargs = {"proxy_config": TINY_PROXY}

    def test_mask_applied_at_this_pruning_rate(self, data, selection):
        # ratio 0.3 = 70 % pruned → β = 0.1 → 30 of 300 masked, none of them kept
        assert selection.manifest["beta"] == 0.1 and selection.manifest["masked"] == 30
        hardest = np.argsort(-selection.raw_scores, kind="stable")[:30]
        assert not np.isin(hardest, selection.indices).any()

    @pytest.mark.parametrize("score", ["forgetting", "el2n"])
    def test_other_scores(self, data, score):
        sel = self.run(data, score=score)
        assert len(sel.indices) == round(self.ratio * len(data))


def test_default_beta_follows_the_pruning_rate():
    assert [default_beta(r) for r in (0.9, 0.7, 0.5, 0.3, 0.2, 0.1)] == [0.0, 0.0, 0.0, 0.1, 0.1, 0.3]


def test_mask_then_strata_by_hand():
    # 90 easy (0.0), 10 medium (1.0), 5 hardest (5.0) at indices 100..104; β·N = 5/105·105 = 5 masked
    hardness = np.concatenate([np.zeros(90), np.ones(10), np.full(5, 5.0)])
    kept, priority, masked = ccs_select(hardness, 20, 5 / 105, np.random.default_rng(0))
    np.testing.assert_array_equal(masked, np.arange(100, 105))
    # the rest spans [0, 1]: two non-empty strata; the sparse one (10) is filled first with 20 // 2 = 10
    assert len(kept) == 20 and not np.isin(kept, masked).any()
    assert ((kept >= 90) & (kept < 100)).sum() == 10
    np.testing.assert_array_equal(top_k(priority, 20), kept)
    assert priority[masked].max() < priority[np.setdiff1d(np.arange(105), masked)].min()


def test_mask_never_eats_into_the_budget():
    kept, _, masked = ccs_select(np.arange(10.0), 8, 0.5, np.random.default_rng(0))
    # β·N = 5 but only 10 − 8 = 2 may go: the two hardest (8, 9)
    np.testing.assert_array_equal(masked, [8, 9])
    np.testing.assert_array_equal(kept, np.arange(8))


def test_class_balanced_mask_is_per_class():
    labels = np.array([0] * 10 + [1] * 10)
    hardness = np.concatenate([np.arange(10.0), np.arange(10.0) + 100])  # class 1 is harder everywhere
    kept, _, masked = ccs_select(hardness, 10, 0.2, np.random.default_rng(0), labels=labels, num_classes=2)
    # per class the hardest 2: 8, 9 and 18, 19 (a global mask would take 4 from class 1)
    np.testing.assert_array_equal(masked, [8, 9, 18, 19])
    np.testing.assert_array_equal(np.bincount(labels[kept]), [5, 5])


def test_difficulty_scores_by_hand():
    margin = np.array([[2.0, -1.0, 0.5], [4.0, -3.0, 0.5]])
    correct = np.array([[1, 0, 1], [1, 0, 0]], dtype=bool)
    record = ProxyRecord(loss=np.zeros((2, 3)), correct=correct, margin=margin, logits={1: np.zeros((3, 2))})
    labels = np.array([0, 1, 0])
    np.testing.assert_allclose(difficulty(record, labels, "aum"), [-3.0, 2.0, -0.5])
    np.testing.assert_array_equal(difficulty(record, labels, "forgetting"), [0, 2, 1])  # never learned → E = 2
    np.testing.assert_allclose(difficulty(record, labels, "el2n"), np.full(3, np.sqrt(0.5)))


def test_aum_needs_margin_in_user_dynamics(tmp_path):
    data = toy_dataset([0, 1, 0, 1])
    record = ProxyRecord(loss=np.zeros((2, 4)), correct=np.ones((2, 4), dtype=bool), source="mine.npz")
    with pytest.raises(InputError, match="mine.npz.*'margin'"):
        select(data, method="ccs", ratio=0.5, dynamics=record, progress=False)
    sel = select(data, method="ccs", ratio=0.5, dynamics=record, score="forgetting", progress=False)
    assert len(sel.indices) == 2
