import numpy as np

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.methods.moso import moso_scores
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord


class TestMoSo(MethodContract):
    method = "moso"
    select_kwargs = {"proxy_config": TINY_PROXY}

    def test_uses_every_recorded_checkpoint(self, selection):
        assert selection.manifest["checkpoints"] == [1, 2, 3]


def test_moso_by_hand():
    # d = 1, two classes, logits 0, label 0: r = (-1/2, 1/2), ‖r‖² = 1/2, g_i = (r h_i, r)
    # h = (1, -1, 3): ‖g‖² = (h² + 1)/2 = (1, 1, 5); ḡ = (r·mean h, r) with mean h = 1
    # ⟨g_i, ḡ⟩ = (h_i·1 + 1)/2 = (1, 0, 2); score = ⟨g_i, ḡ⟩ − ‖g_i‖²/3 = (2/3, −1/3, 1/3)
    features = np.array([[1.0], [-1.0], [3.0]])
    logits, labels = np.zeros((3, 2)), np.zeros(3, dtype=np.int64)
    np.testing.assert_allclose(moso_scores([(features, logits)], labels), [2 / 3, -1 / 3, 1 / 3])
    # second checkpoint with h = 0: every g_i = (0, r): ⟨g_i, ḡ⟩ = 1/2, ‖g‖²/3 = 1/6 → 1/3 each; mean of both
    both = moso_scores([(features, logits), (np.zeros((3, 1)), logits)], labels)
    np.testing.assert_allclose(both, [(2 / 3 + 1 / 3) / 2, 0.0, 1 / 3], atol=1e-12)


def test_moso_equals_explicit_gradients():
    rng = np.random.default_rng(0)
    features, logits, labels = rng.normal(size=(7, 3)), rng.normal(size=(7, 4)), rng.integers(0, 4, size=7)
    residual = scores.residuals(logits, labels)
    grads = np.concatenate([np.einsum("nc,nd->ncd", residual, features).reshape(7, -1), residual], axis=1)
    expected = grads @ grads.mean(axis=0) - (grads**2).sum(axis=1) / 7
    np.testing.assert_allclose(moso_scores([(features, logits)], labels), expected, rtol=1e-10)
    # the same as the leave-one-out form ⟨g_i, (Σ_j g_j − g_i)/(N − 1)⟩, up to the factor N/(N − 1)
    loo = np.array([grads[i] @ (grads.sum(0) - grads[i]) / 6 for i in range(7)])
    np.testing.assert_allclose(expected * 7 / 6, loo, rtol=1e-10)


def test_select_keeps_highest_moso_from_given_dynamics():
    data = toy_dataset([0, 0, 0, 1])
    features = np.array([[1.0], [-1.0], [3.0], [0.0]], dtype=np.float32)
    record = ProxyRecord(
        loss=np.ones((1, 4)), correct=np.ones((1, 4), dtype=bool),
        logits={1: np.zeros((4, 2))}, features={1: features}, source="hand-made",
    )
    sel = select(data, method="moso", ratio=0.5, seed=0, dynamics=record, progress=False)
    np.testing.assert_allclose(sel.raw_scores, moso_scores([(features, np.zeros((4, 2)))], data.train.label_array))
    np.testing.assert_array_equal(sel.indices, np.sort(np.argsort(-sel.raw_scores, kind="stable")[:2]))
