import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.moso import MoSo, moso_scores
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord


class TestMoSo(MethodContract):
    method = "moso"
    select_kwargs = {"proxy_config": TINY_PROXY}

    def test_uses_every_recorded_checkpoint_weighted_by_its_rate(self, selection):
        assert selection.manifest["checkpoints"] == [1, 2, 3]
        weights = selection.manifest["checkpoint_weights"]
        assert len(weights) == 3 and weights[0] > weights[2] > 0  # the proxy's decaying schedule

    def test_default_keeps_per_class(self, data, selection):
        expected = np.round(self.ratio * data.class_counts)
        kept = np.bincount(data.train.label_array[selection.indices], minlength=data.num_classes)
        assert np.all(np.abs(kept - expected) <= 1)


def reference_score(grads: np.ndarray) -> np.ndarray:
    """MoSo_scoring_exact written out on explicit gradient vectors (the released formula)."""
    n = len(grads)
    mean = grads.mean(axis=0)
    return ((2 * n - 3) * (mean @ mean) - (grads**2).sum(1) + (2 * n - 4) * ((mean - grads / n) * grads).sum(1)) / (n - 1) ** 2


def test_moso_by_hand():
    # d = 1, two classes, logits 0, label 0: r = (-1/2, 1/2), g_i = (r h_i, r); h = (1, -1, 3)
    # ‖g‖² = (h² + 1)/2 = (1, 1, 5); ḡ = (r·1, r): ‖ḡ‖² = 1; ⟨ḡ, g_i⟩ = (h_i + 1)/2 = (1, 0, 2)
    # N = 3: s = (3·1 − ‖g‖² + 2·(⟨ḡ,g⟩ − ‖g‖²/3)) / 4 = (3 − 1 + 2·2/3, 3 − 1 − 2·1/3, 3 − 5 + 2·1/3) / 4
    features = np.array([[1.0], [-1.0], [3.0]])
    logits, labels = np.zeros((3, 2)), np.zeros(3, dtype=np.int64)
    by_hand = np.array([2 + 4 / 3, 2 - 2 / 3, -2 + 2 / 3]) / 4
    np.testing.assert_allclose(moso_scores([(features, logits, 1.0)], labels), by_hand)
    # each checkpoint's score times its learning rate, summed: h = 0 gives g = (0, r), all alike:
    # s = (3·½ − ½ + 2·(½ − ½/3)) / 4 = 5/12 each
    both = moso_scores([(features, logits, 0.1), (np.zeros((3, 1)), logits, 0.02)], labels)
    np.testing.assert_allclose(both, 0.1 * by_hand + 0.02 * 5 / 12)


def test_moso_equals_explicit_gradients():
    rng = np.random.default_rng(0)
    features, logits, labels = rng.normal(size=(7, 3)), rng.normal(size=(7, 4)), rng.integers(0, 4, size=7)
    residual = scores.residuals(logits, labels)
    grads = np.concatenate([np.einsum("nc,nd->ncd", residual, features).reshape(7, -1), residual], axis=1)
    np.testing.assert_allclose(moso_scores([(features, logits, 0.5)], labels), 0.5 * reference_score(grads), rtol=1e-10)


def hand_record(features, lr=(0.1,)):
    n = len(features)
    epochs = len(lr)
    return ProxyRecord(
        loss=np.ones((epochs, n)), correct=np.ones((epochs, n), dtype=bool), lr=np.asarray(lr),
        logits={e: np.zeros((n, 2)) for e in range(epochs + 1)}, features={e: features for e in range(epochs + 1)},
        source="hand-made",
    )


def test_per_class_quotas_and_learning_rate_weights():
    # class 0: h = 0, 1, −1; class 1: h = −1, 2 (logits 0): both best scores lie in class 0
    labels = np.array([0, 0, 0, 1, 1])
    features = np.array([[0.0], [1.0], [-1.0], [-1.0], [2.0]], dtype=np.float32)
    record = hand_record(features, lr=(0.1, 0.05))
    sel = select(toy_dataset(labels), method="moso", ratio=0.4, seed=0, dynamics=record, progress=False)
    # checkpoints 1 and 2 (epoch 0 = initialisation is left out), weights lr[0] and lr[1]
    assert sel.manifest["checkpoints"] == [1, 2] and sel.manifest["checkpoint_weights"] == [0.1, 0.05]
    residual = scores.residuals(np.zeros((5, 2)), labels)
    grads = np.concatenate([residual * features, residual], axis=1)  # C·d = 2, bias 2
    np.testing.assert_allclose(sel.raw_scores, (0.1 + 0.05) * reference_score(grads), rtol=1e-6)
    # quotas 0.4·(3, 2) = (1.2, 0.8) → (1, 1): the best of each class, even if class 1 scores lower
    s = sel.raw_scores
    assert min(s[0], s[2]) > max(s[3], s[4])  # a global top-2 takes two of class 0
    np.testing.assert_array_equal(sel.indices, [int(np.argmax(s[:3])), 3 + int(np.argmax(s[3:]))])
    globally = select(toy_dataset(labels), method="moso", ratio=0.4, seed=0, dynamics=record, per_class=False, progress=False)
    np.testing.assert_array_equal(globally.indices, np.sort(np.argsort(-s, kind="stable")[:2]))


def test_select_matches_the_reference_nopt2_on_balanced_classes():
    # nopt2 takes int(size/K) per class by score; on balanced classes that is our proportional quota
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1, 2], 20)
    features = rng.normal(size=(60, 4)).astype(np.float32)
    logits = rng.normal(size=(60, 3)).astype(np.float32)
    record = ProxyRecord(loss=np.ones((2, 60)), correct=np.ones((2, 60), dtype=bool), lr=np.array([0.1, 0.01]),
                         logits={1: logits, 2: 0.5 * logits}, features={1: features, 2: features + 1}, source="hand-made")
    sel = select(toy_dataset(labels), method="moso", ratio=0.3, seed=0, dynamics=record, progress=False)
    total = 0
    for epoch, lr in ((1, 0.1), (2, 0.01)):
        r = scores.residuals(record.logits[epoch], labels)
        h = np.asarray(record.features[epoch], dtype=np.float64)
        total = total + lr * reference_score(np.concatenate([np.einsum("nc,nd->ncd", r, h).reshape(60, -1), r], axis=1))
    size, classes = int(60 * 0.3), 3
    reference = np.concatenate([np.argsort(-(total * (labels == c)), kind="stable")[: size // classes] for c in range(classes)])
    kept = set(sel.indices.tolist())
    assert len(kept & set(reference.tolist())) / len(kept | set(reference.tolist())) >= 0.99


def test_lr_weighting_needs_the_lr_field():
    record = hand_record(np.zeros((4, 1), dtype=np.float32))
    record.lr = None
    with pytest.raises(InputError, match="'lr'"):
        select(toy_dataset([0, 0, 1, 1]), method="moso", ratio=0.5, dynamics=record, progress=False)
    sel = select(toy_dataset([0, 0, 1, 1]), method="moso", ratio=0.5, dynamics=record, lr_weighted=False, progress=False)
    assert sel.manifest["checkpoint_weights"] == [1.0]
    assert MoSo.Params().lr_weighted and MoSo.Params().per_class
