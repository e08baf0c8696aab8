import math

import numpy as np

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.methods.cgscore import complexity_gaps, ntk_gram

# unit vectors: x1 ⟂ x2, and x3 at 120° from both (x·x3 = −1/2)
X = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.5, -0.5, 1 / math.sqrt(2)]])


class TestCGScore(MethodContract):
    method = "cgscore"
    params = {"chunk_size": 16, "repeats": 2}
    select_kwargs = {"features": digits_features()}


def test_ntk_gram_by_hand():
    # H_ij = u(π − arccos u)/(2π): u = 0 → 0; u = −1/2 → (−1/2)(π/3)/(2π) = −1/12; diagonal 1/2
    expected = np.array([[1 / 2, 0, -1 / 12], [0, 1 / 2, -1 / 12], [-1 / 12, -1 / 12, 1 / 2]])
    np.testing.assert_allclose(ntk_gram(X), expected, atol=1e-15)


def test_complexity_gaps_by_hand():
    # 12·H = [[6, 0, −1], [0, 6, −1], [−1, −1, 6]], det 204, so H⁻¹ = (1/17)·[[35, 1, 6], [1, 35, 6], [6, 6, 36]]
    # y = (1, 1, −1): H⁻¹y = (30, 30, −24)/17 and yᵀH⁻¹y = 84/17
    # gap_i = (H⁻¹y)_i² / (H⁻¹)_ii: 900/(17·35) = 180/119 for x1 and x2, 576/(17·36) = 16/17 for x3
    gaps = complexity_gaps(ntk_gram(X), np.array([1.0, 1.0, -1.0]))
    np.testing.assert_allclose(gaps, [180 / 119, 180 / 119, 16 / 17], rtol=1e-7)  # ridge 1e-8 on a diagonal of 1/2
    # the same as removing the sample and recomputing: 84/17 − yᵀH₋₁⁻¹y with H₋₁ = [[1/2, −1/12], [−1/12, 1/2]]
    h = ntk_gram(X)
    y = np.array([1.0, 1.0, -1.0])
    full = y @ np.linalg.solve(h, y)
    assert math.isclose(full, 84 / 17, rel_tol=1e-12)
    for i in range(3):
        keep = [j for j in range(3) if j != i]
        assert math.isclose(full - y[keep] @ np.linalg.solve(h[np.ix_(keep, keep)], y[keep]), gaps[i], rel_tol=1e-7)


def test_select_scores_each_class_against_the_others():
    # class 0 = {x1, x2} against x3 (the 3 × 3 case above); class 1 = {x3} against one of x1, x2 (both give
    # H = [[1/2, −1/12], [−1/12, 1/2]], H⁻¹ = [[72, 12], [12, 72]]/35, H⁻¹y = ±12/7 → gap (144/49)/(72/35) = 10/7)
    sel = select(toy_dataset([0, 0, 1]), method="cgscore", ratio=2 / 3, features=X.astype(np.float32), progress=False)
    np.testing.assert_allclose(sel.raw_scores, [180 / 119, 180 / 119, 10 / 7], rtol=1e-6)
    np.testing.assert_array_equal(sel.indices, [0, 2])  # per class (quotas 1, 1): the highest of each
    globally = select(toy_dataset([0, 0, 1]), method="cgscore", ratio=2 / 3, features=X.astype(np.float32), per_class=False, progress=False)
    np.testing.assert_array_equal(globally.indices, [0, 1])


def test_mislabelled_sample_scores_highest():
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    labels = np.repeat([0, 1], 20)
    features = (centres[labels] + 0.3 * rng.standard_normal((40, 4))).astype(np.float32)
    labels[5] = 1  # a class-0 point labelled 1
    sel = select(toy_dataset(labels), method="cgscore", ratio=0.1, features=features, chunk_size=8, repeats=3, progress=False)
    assert int(np.argmax(sel.raw_scores)) == 5


def test_exact_duplicates_stay_finite():
    # x1 twice with the same label: removing one copy changes nothing (gap ≈ 0); with opposite labels the
    # pair cannot be fitted and both copies score very high
    x = np.array([X[0], X[0], X[2]])
    same = complexity_gaps(ntk_gram(x), np.array([1.0, 1.0, -1.0]))
    assert np.isfinite(same).all() and same[0] < 1e-6 and same[1] < 1e-6 and same[2] > 0.5
    conflict = complexity_gaps(ntk_gram(x), np.array([1.0, -1.0, -1.0]))
    assert conflict[0] > 1e6 and conflict[1] > 1e6


def reference_cg(features, labels, ratio):
    """calc_cg_score + pruning as released: raw rows to unit norm, each class against as many others
    (here: all of them), explicit leave-one-out inverses; keep the int(n_c·ratio) highest of each class."""
    x = features / np.linalg.norm(features, axis=1, keepdims=True)
    measure = np.zeros(len(labels))
    for c in np.unique(labels):
        cur, other = np.flatnonzero(labels == c), np.flatnonzero(labels != c)
        a = x[np.concatenate([cur, other])]
        y = np.concatenate([np.ones(len(cur)), -np.ones(len(other))])
        inner = np.clip(a @ a.T, -1, 1)
        h = inner * (np.pi - np.arccos(inner)) / (2 * np.pi)
        np.fill_diagonal(h, 0.5)
        inv = np.linalg.inv(h)
        full = y @ inv @ y
        for k in range(len(cur)):
            keep = np.r_[0:k, k + 1 : len(y)]
            inv_mi = inv[np.ix_(keep, keep)] - np.outer(inv[k, keep], inv[k, keep]) / inv[k, k]
            measure[cur[k]] = full - y[keep] @ inv_mi @ y[keep]
    kept = [np.flatnonzero(labels == c)[np.argsort(-measure[labels == c], kind="stable")[: int((labels == c).sum() * ratio)]]
            for c in np.unique(labels)]
    return np.sort(np.concatenate(kept)), measure


def test_select_equals_the_released_procedure_on_fixed_inputs():
    # two classes of 30: "as many negatives" is all the others, so the released score is deterministic
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 30)
    features = np.abs(rng.normal(size=(60, 5)) + labels[:, None]).astype(np.float32)  # non-negative, like ReLU features
    sel = select(toy_dataset(labels), method="cgscore", ratio=0.3, features=features, progress=False)
    reference, measure = reference_cg(features.astype(np.float64), labels, 0.3)
    np.testing.assert_allclose(sel.raw_scores, measure, rtol=1e-4)
    assert len(set(sel.indices.tolist()) & set(reference.tolist())) / len(set(sel.indices.tolist()) | set(reference.tolist())) >= 0.99


def test_default_keeps_the_top_of_each_class_from_raw_rows():
    from rlselector.methods.cgscore import CGScore

    assert CGScore.Params().center is False and CGScore.Params().per_class is True
    # the mislabelled-sample case: at ratio 0.5 each class keeps 10 (a global top-20 would not)
    rng = np.random.default_rng(0)
    centres = np.array([[3.0, 0.0, 0.0, 0.0], [0.0, 3.0, 0.0, 0.0]])
    labels = np.repeat([0, 1], 20)
    features = (centres[labels] + 0.3 * rng.standard_normal((40, 4))).astype(np.float32)
    labels[5] = 1
    sel = select(toy_dataset(labels), method="cgscore", ratio=0.5, features=features, progress=False)
    np.testing.assert_array_equal(np.bincount(labels[sel.indices]), [10, 10])
    scores = sel.raw_scores
    for c in (0, 1):
        members = np.flatnonzero(labels == c)
        np.testing.assert_array_equal(np.sort(sel.indices[labels[sel.indices] == c]),
                                      np.sort(members[np.argsort(-scores[members], kind="stable")[:10]]))
    globally = select(toy_dataset(labels), method="cgscore", ratio=0.5, features=features, per_class=False, progress=False)
    np.testing.assert_array_equal(globally.indices, np.sort(np.argsort(-scores, kind="stable")[:20]))
