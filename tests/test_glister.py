import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.glister import carve_validation, glister_greedy
from rlselector.selection.dynamics import ProxyRecord


class TestGlister(MethodContract):
    method = "glister"
    select_kwargs = {"proxy_config": TINY_PROXY}
    params = {"rounds": 4}

    def test_validation_held_out_and_not_selected(self, data, selection):
        # 10 % of each of the 10 classes (30 samples per class) → 3 per class; the budget (90) fits
        # in the 270 other samples, so no validation sample is kept
        assert selection.manifest["validation_size"] == 30
        assert selection.manifest["validation_selected"] == 0


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# indices 0, 1: validation (class 0 at h = (1, 0), class 1 at h = (0, 1));
# 2 and 3: two copies of a class-0 sample at (2, 0); 4: a class-1 sample at (0, 1). Logits 0 (W = 0, b = 0).
FEATURES = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
LABELS = np.array([0, 1, 0, 0, 1])
LOGITS = np.zeros((5, 2))


def test_one_round_takes_the_top_gains():
    # validation gradient at θ0: A = ½[r_v0 h_v0ᵀ + r_v1 h_v1ᵀ] = [[-¼, ¼], [¼, -¼]], a = 0
    # gains r_iᵀ(A h_i + a): samples 2, 3 → 0.5 each, sample 4 → 0.25
    picked, gains = glister_greedy(
        FEATURES, LOGITS, LABELS, val_index=np.array([0, 1]), groups=[np.arange(5)], quotas=[2], lr=1.0, rounds=1
    )
    np.testing.assert_allclose(gains[2:], [0.5, 0.5, 0.25])
    np.testing.assert_array_equal(picked, [2, 3])


def test_greedy_update_of_the_validation_gradient_changes_the_second_pick():
    # after a step on sample 2 (lr 1): validation logits (1.5, -1.5) and (0.5, -0.5); class-0 val is fitted,
    # class-1 val is not: the duplicate (sample 3) now hurts, sample 4 helps
    picked, gains = glister_greedy(
        FEATURES, LOGITS, LABELS, val_index=np.array([0, 1]), groups=[np.arange(5)], quotas=[2], lr=1.0, rounds=2
    )
    np.testing.assert_array_equal(picked, [2, 4])
    # by hand: gain(3) = 1.5(1 − σ(3)) − ½σ(1), gain(4) = ½(σ(3) − 1) + σ(1)
    np.testing.assert_allclose(gains[3], 1.5 * (1 - sigmoid(3)) - 0.5 * sigmoid(1), rtol=1e-12)
    np.testing.assert_allclose(gains[4], 0.5 * (sigmoid(3) - 1) + sigmoid(1), rtol=1e-12)


def test_validation_samples_only_fill_a_budget_the_others_cannot():
    picked, _ = glister_greedy(
        FEATURES, LOGITS, LABELS, val_index=np.array([0, 1]), groups=[np.arange(5)], quotas=[4], lr=1.0, rounds=1
    )
    # three non-validation samples first, then the validation sample of higher gain: gains at θ0 are
    # ¼ for sample 0 (r = (-½, ½), A h = (-¼, ¼)) and ¼ for sample 1 → tie, the lower index
    np.testing.assert_array_equal(np.sort(picked), [0, 2, 3, 4])


def test_validation_split_is_seeded_and_stratified():
    labels = np.array([0] * 20 + [1] * 10 + [2] * 1)
    first = carve_validation(labels, 0.1, np.random.default_rng(5), 3)
    np.testing.assert_array_equal(first, carve_validation(labels, 0.1, np.random.default_rng(5), 3))
    # 2 of class 0, 1 of class 1, none of the one-sample class 2
    np.testing.assert_array_equal(np.bincount(labels[first], minlength=3), [2, 1, 0])


def test_select_on_given_dynamics():
    data = toy_dataset([0, 1, 0, 0, 1] * 4)
    features = np.tile(FEATURES, (4, 1)).astype(np.float32)
    record = ProxyRecord(
        loss=np.ones((1, 20)), correct=np.ones((1, 20), dtype=bool),
        logits={1: np.zeros((20, 2))}, features={1: features}, source="hand-made",
    )
    sel = select(data, method="glister", ratio=0.5, seed=0, dynamics=record, val_fraction=0.25, progress=False)
    assert len(sel.indices) == 10 and sel.manifest["validation_size"] == 5
    assert sel.manifest["validation_selected"] == 0


def test_bad_parameters_refused():
    data = toy_dataset([0, 1])
    record = ProxyRecord(loss=np.ones((1, 2)), correct=np.ones((1, 2), dtype=bool), source="no-features.npz")
    with pytest.raises(InputError, match="val_fraction"):
        select(data, method="glister", ratio=0.5, dynamics=record, val_fraction=1.5, progress=False)
    with pytest.raises(InputError, match="no-features.npz.*logits"):
        select(data, method="glister", ratio=0.5, dynamics=record, progress=False)
