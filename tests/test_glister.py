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

    def test_validation_held_out_and_not_selected(self, data, selection):
        # 10 % of each of the 10 classes (30 samples per class) → 3 per class; the budget (90) fits
        # in the 270 other samples, so no validation sample is kept
        assert selection.manifest["validation_size"] == 30
        assert selection.manifest["validation_selected"] == 0

    def test_stochastic_greedy_is_seeded(self, data):
        first = self.run(data, greedy="stochastic")
        np.testing.assert_array_equal(first.indices, self.run(data, greedy="stochastic").indices)
        assert len(first.indices) == 90 and first.manifest["validation_selected"] == 0


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# rows 0, 1: validation (class 0 at h = (1, 0), class 1 at h = (0, 1)); candidates 2, 3: class 0 at (3, 0);
# 4: class 1 at (0, 2); 5: class 1 at (0, 1). Logits 0 (W = 0, b = 0), so r = (−½, ½) for class 0, (½, −½) for 1.
FEATURES = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 1.0]])
LABELS = np.array([0, 1, 0, 0, 1, 1])
LOGITS = np.zeros((6, 2))
VAL, CANDIDATES = np.array([0, 1]), np.arange(2, 6)


def greedy(budget, **kw):
    return glister_greedy(FEATURES, LOGITS, LABELS, candidates=CANDIDATES, val_index=VAL, budget=budget, lr=1.0, **kw)


def test_first_step_takes_the_top_gain():
    # validation gradient at θ0: A = ½[r_v0 h_v0ᵀ + r_v1 h_v1ᵀ] = [[-¼, ¼], [¼, -¼]], a = 0
    # gains r_iᵀ(A h_i + a): samples 2, 3 → ¾ each, 4 → ½, 5 → ¼
    picked, gains = greedy(0)
    np.testing.assert_allclose(gains[2:], [0.75, 0.75, 0.5, 0.25])
    assert greedy(1)[0].tolist() == [2]  # tie with 3: the lower index


def test_the_step_uses_the_sum_of_the_selected_gradients():
    # after 2 (step 1) and 4 (step 2, gain 3/2·σ(1) − ½(1 − σ(4)) beats 3 and 5), the summed step
    # g_2 + g_4 moves the validation logits to (3/2, −3/2) and (−1, 1): with u = 1 − σ(3), w = 1 − σ(2)
    # gain(3) = 2u − ½w = 0.035 and gain(5) = w − ½u = 0.096 → 5. The mean step (DeepCore) would move them
    # half as far, to (¾, −¾), (−½, ½): gain(3) = 0.230 > gain(5) = 0.178 → 3.
    picked, gains = greedy(2)
    assert picked.tolist() == [2, 4]
    u, w = 1 - sigmoid(3), 1 - sigmoid(2)
    np.testing.assert_allclose(gains[[3, 5]], [2 * u - 0.5 * w, w - 0.5 * u], rtol=1e-12)
    assert greedy(3)[0].tolist() == [2, 4, 5]


def reference_glister(features, logits, labels, val, candidates, budget, eta):
    """CORDS's Naive greedy (linear_layer=True, Supervised) on explicit gradient vectors."""
    def grads(h, z, y):
        p = np.exp(z - z.max(1, keepdims=True))
        r = p / p.sum(1, keepdims=True)
        r[np.arange(len(y)), y] -= 1
        return np.concatenate([r, (r[:, :, None] * h[:, None, :]).reshape(len(y), -1)], axis=1)

    g = grads(features[candidates], logits[candidates], labels[candidates])
    classes = logits.shape[1]
    remain, chosen, curr = list(range(len(candidates))), [], np.zeros(g.shape[1])
    for _ in range(budget):
        z = logits[val] - eta * curr[:classes] - eta * features[val] @ curr[classes:].reshape(classes, -1).T
        gains = g[remain] @ grads(features[val], z, labels[val]).mean(0)
        best = remain[int(np.argmax(gains))]
        chosen.append(best)
        remain.remove(best)
        curr = curr + g[best]
    return candidates[np.array(chosen)]


def test_naive_greedy_equals_the_reference_on_fixed_inputs():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=120)
    features = rng.normal(size=(120, 4)) + labels[:, None]
    logits = rng.normal(size=(120, 3))
    val, candidates = np.arange(0, 120, 6), np.setdiff1d(np.arange(120), np.arange(0, 120, 6))
    picked, _ = glister_greedy(features, logits, labels, candidates=candidates, val_index=val, budget=40, lr=0.1)
    reference = reference_glister(features, logits, labels, val, candidates, 40, 0.1)
    kept, ref = set(picked.tolist()), set(reference.tolist())
    assert len(kept & ref) / len(kept | ref) >= 0.99


def test_stochastic_greedy_looks_at_a_sample_of_the_candidates():
    # (4 candidates / budget 2)·ln 100 = 9 ≥ 4: every step sees them all, the naive picks
    assert greedy(2, rng=np.random.default_rng(0))[0].tolist() == [2, 4]
    # 100 candidates, budget 40: int(2.5·ln 100) = 11 a step, a seeded draw
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, size=100)
    features, logits = rng.normal(size=(100, 4)), rng.normal(size=(100, 3))
    args = dict(candidates=np.arange(10, 100), val_index=np.arange(10), budget=40, lr=0.1)
    first, _ = glister_greedy(features, logits, labels, rng=np.random.default_rng(5), **args)
    again, _ = glister_greedy(features, logits, labels, rng=np.random.default_rng(5), **args)
    naive, _ = glister_greedy(features, logits, labels, **args)
    np.testing.assert_array_equal(first, again)
    assert len(set(first.tolist())) == 40 and first.min() >= 10 and not np.array_equal(np.sort(first), np.sort(naive))


def test_bias_only_gradients():
    data = toy_dataset(LABELS.tolist() * 3)
    record = ProxyRecord(loss=np.ones((1, 18)), correct=np.ones((1, 18), dtype=bool),
                         logits={1: np.tile(LOGITS, (3, 1))}, features={1: np.tile(FEATURES, (3, 1)).astype(np.float32)})
    sel = select(data, method="glister", ratio=0.5, dynamics=record, bias_only=True, progress=False)
    # with r only, every class-0 sample has the same gradient: gains tie within a class
    g = sel.raw_scores
    class0 = np.flatnonzero(data.train.label_array == 0)
    assert np.allclose(g[class0], g[class0[0]]) and sel.manifest["gradient"] == "last layer (bias only), exact"


def test_validation_split_is_seeded_and_stratified():
    labels = np.array([0] * 20 + [1] * 10 + [2] * 1)
    first = carve_validation(labels, 0.1, np.random.default_rng(5), 3)
    np.testing.assert_array_equal(first, carve_validation(labels, 0.1, np.random.default_rng(5), 3))
    # 2 of class 0, 1 of class 1, none of the one-sample class 2
    np.testing.assert_array_equal(np.bincount(labels[first], minlength=3), [2, 1, 0])


def test_select_on_given_dynamics():
    data = toy_dataset([0, 1, 0, 0, 1, 1] * 4)
    features = np.tile(FEATURES, (4, 1)).astype(np.float32)
    record = ProxyRecord(
        loss=np.ones((1, 24)), correct=np.ones((1, 24), dtype=bool),
        logits={1: np.zeros((24, 2))}, features={1: features}, source="hand-made",
    )
    sel = select(data, method="glister", ratio=0.5, seed=0, dynamics=record, val_fraction=0.25, progress=False)
    assert len(sel.indices) == 12 and sel.manifest["validation_size"] == 6
    assert sel.manifest["validation_selected"] == 0
    # a budget beyond the 18 other samples takes validation ones, by their gain
    big = select(data, method="glister", ratio=0.9, seed=0, dynamics=record, val_fraction=0.25, progress=False)
    assert len(big.indices) == 22 and big.manifest["validation_selected"] == 4
    # per class under --class-balanced: each class against its own validation samples
    balanced = select(data, method="glister", ratio=0.5, seed=0, dynamics=record, val_fraction=0.25, class_balanced=True, progress=False)
    np.testing.assert_array_equal(np.bincount(data.train.label_array[balanced.indices]), [6, 6])


def test_bad_parameters_refused():
    data = toy_dataset([0, 1])
    record = ProxyRecord(loss=np.ones((1, 2)), correct=np.ones((1, 2), dtype=bool), source="no-features.npz")
    with pytest.raises(InputError, match="val_fraction"):
        select(data, method="glister", ratio=0.5, dynamics=record, val_fraction=1.5, progress=False)
    with pytest.raises(InputError, match="no-features.npz.*logits"):
        select(data, method="glister", ratio=0.5, dynamics=record, progress=False)
