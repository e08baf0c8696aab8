import numpy as np

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.methods.herding import herding_order

# four points of one class; mean (2, 0.75)
POINTS = np.array([[0, 0], [4, 0], [1, 1], [3, 2]], dtype=np.float32)


class TestHerding(MethodContract):
    method = "herding"
    select_kwargs = {"features": digits_features()}


def test_herding_order_by_hand():
    # step 1: closest to μ=(2, .75): d² = 4.5625, 4.5625, 1.0625, 2.5625 → point 2, sum S=(1, 1)
    # step 2: target 2μ − S = (3, .5): d² = 9.25, 1.25, –, 2.25 → point 1, S=(5, 1)
    # step 3: target 3μ − S = (1, 1.25): d² = 2.5625, –, –, 4.5625 → point 0; then point 3
    np.testing.assert_array_equal(herding_order(POINTS, 4), [2, 1, 0, 3])
    # not the same as "closest to the mean first" (which would take point 3 second)
    assert herding_order(POINTS, 2).tolist() == [2, 1]


def test_select_keeps_the_first_picks_per_class():
    features = np.concatenate([POINTS, POINTS + 100.0])  # class 1: the same shape far away
    sel = select(toy_dataset([0] * 4 + [1] * 4), method="herding", ratio=0.5, features=features, progress=False)
    np.testing.assert_array_equal(sel.indices, [1, 2, 5, 6])
    s = sel.scores
    assert s[2] > s[1] > s[0] and s[6] > s[5] > s[4]  # reverse selection order
    assert s[0] == s[3] == 0.0  # never picked
    assert sel.manifest["per_class"] == {"c0": {"kept": 2, "total": 4}, "c1": {"kept": 2, "total": 4}}


def test_global_herding_targets_the_global_mean():
    # three points of class 0 near 0, one of class 1 at 10: the global mean is 3.25
    features = np.array([[0.0], [1.0], [2.0], [10.0]], dtype=np.float32)
    data = toy_dataset([0, 0, 0, 1])
    # global: mean 3.25 → 2 first (d=1.25); then target 6.5 − 2 = 4.5 → 2 taken, 1 (3.5) vs 10 (5.5) vs 0 (4.5) → 1
    sel = select(data, method="herding", ratio=0.5, features=features, per_class=False, progress=False)
    np.testing.assert_array_equal(sel.indices, [1, 2])
    assert sel.scores[2] > sel.scores[1]


def test_select_equals_the_herding_rule_written_out():
    # per class: step t adds argmin_x ‖(t+1)·μ − (S + x)‖ (Welling; DeepCore's argmax would take the farthest)
    features = digits_features()
    labels = toy_dataset(np.repeat(np.arange(10), 30)).train.label_array
    sel = select(toy_dataset(labels), method="herding", ratio=0.3, features=features, progress=False)
    kept = []
    for c in range(10):
        x = features[labels == c].astype(np.float64)
        chosen = np.zeros(len(x), dtype=bool)
        for t in range(9):
            d = np.linalg.norm((t + 1) * x.mean(0) - (x[chosen].sum(0) + x), axis=1)
            d[chosen] = np.inf
            chosen[int(np.argmin(d))] = True
        kept += list(np.flatnonzero(labels == c)[chosen])
    reference = set(kept)
    assert len(set(sel.indices.tolist()) & reference) / len(set(sel.indices.tolist()) | reference) >= 0.99
