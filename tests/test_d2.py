import math

import numpy as np
import pytest

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.d2 import D2Pruning, d2_order, knn_graph
from rlselector.selection.dynamics import ProxyRecord

# five nodes on a line; with k = 1 each links to its nearest: 0→1, 1→0, 2→1, 3→4, 4→3; made symmetric,
# 1–2 is an edge both ways: neighbours 0: {1}, 1: {0, 2}, 2: {1}, 3: {4}, 4: {3} (d = 1, 1, 2, 2, 2)
LINE = np.array([[0.0], [1.0], [3.0], [10.0], [12.0]], dtype=np.float32)
DIFFICULTY = np.array([1.0, 2.0, 4.0, 1.0, 2.0])
LN2 = math.log(2.0)  # exp(−ln2·d) = 1/2 at d = 1 and 1/4 at d = 2


def correct_for_forgetting():
    # forgetting events per column (1→0 transitions): 1, 2, never learnt (0 events), 1, 2
    return np.array([[1, 1, 0, 1, 1], [0, 0, 0, 1, 0], [1, 1, 0, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)


class TestD2(MethodContract):
    min_raw_auc = None  # stratified sampling over message-passed scores, not their top (measured 0.46)
    method = "d2"
    params = {"difficulty": "uniform"}
    select_kwargs = {"features": digits_features()}


def test_defaults_are_the_released_recipe():
    p = D2Pruning.Params()
    assert (p.neighbours, p.gamma_forward, p.gamma_reverse, p.difficulty, p.beta, p.per_class) == (5, 1.0, 0.1, "forgetting", None, True)


def test_knn_graph_is_symmetric_with_euclidean_distances():
    graph = knn_graph(LINE, 1)
    dense = graph.toarray()
    np.testing.assert_allclose(dense, dense.T)
    assert graph.nnz == 6  # 0–1, 1–2, 3–4, each both ways
    np.testing.assert_allclose(dense[1], [1, 0, 2, 0, 0], atol=1e-5)  # 2 chose 1, so 1 links back to 2
    np.testing.assert_allclose(dense[3], [0, 0, 0, 0, 2], atol=1e-5)
    # duplicates keep their zero-distance edge
    twins = knn_graph(np.array([[0.0], [0.0], [5.0]], dtype=np.float32), 1)
    assert twins[0, 1] == 0 and 1 in twins[0].indices


def test_forward_and_reverse_message_passing_by_hand():
    graph = knn_graph(LINE, 1)
    order, forward, _ = d2_order(DIFFICULTY, graph, 5, LN2, LN2)
    # forward s_i + Σ exp(−ln2·d)·s_j: 1 + ½·2; 2 + ½·1 + ¼·4; 4 + ¼·2; 1 + ¼·2; 2 + ¼·1
    np.testing.assert_allclose(forward, [2.0, 3.5, 4.5, 1.5, 2.25], rtol=1e-5)
    # reverse: pick 2 (4.5) → node 1 −= ¼·4.5 → 2.375; pick 1 → node 0 −= ½·2.375 → 0.8125 (2 is taken);
    # pick 4 (2.25) → node 3 −= ¼·2.25 → 0.9375; pick 3 (0.9375 > 0.8125); pick 0
    np.testing.assert_array_equal(order, [2, 1, 4, 3, 0])
    # without reverse passing (weights 0) the forward order: 0 (2.0) before 3 (1.5)
    order, _, _ = d2_order(DIFFICULTY, graph, 5, LN2, 1e9)
    np.testing.assert_array_equal(order, [2, 1, 4, 0, 3])


def test_the_released_kernels_exp_minus_d_and_exp_minus_tenth_d():
    # LINE with the defaults γ_f = 1, γ_r = 0.1 on distances d (not d²)
    graph = knn_graph(LINE, 1)
    order, forward, final = d2_order(DIFFICULTY, graph, 1, 1.0, 0.1)
    e1, e2 = math.exp(-1), math.exp(-2)
    np.testing.assert_allclose(forward, [1 + 2 * e1, 2 + e1 + 4 * e2, 4 + 2 * e2, 1 + 2 * e2, 2 + e2], rtol=1e-5)
    # pick 2, then its neighbour 1 −= exp(−0.1·2)·forward[2]; the others keep their forward score
    assert order[0] == 2
    np.testing.assert_allclose(final[[0, 1, 3, 4]], [forward[0], forward[1] - math.exp(-0.2) * forward[2], forward[3], forward[4]], rtol=1e-6)
    # a difficulty of 0 still passes 1e-7 forward (the released epsilon)
    _, zero_forward, _ = d2_order(np.zeros(5), graph, 0, 1.0, 0.1)
    np.testing.assert_allclose(zero_forward, 1e-7 * np.array([e1, e1 + e2, e2, e2, e2]), rtol=1e-5)


def six_point_record():
    # two classes of three on a line; forgetting counts (1, 0, 0 | 0, 1, 0); AUM (summed probability
    # margins) 1.5, 1.4, −2.5, 1.8, 0.8, 2.1: lowest at sample 2
    prob_margin = np.array([[0.5, 0.4, -0.9, 0.6, 0.2, 0.7], [0.5, 0.5, -0.8, 0.6, 0.3, 0.7], [0.5, 0.5, -0.8, 0.6, 0.3, 0.7]])
    correct = np.array([[1, 1, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1], [1, 1, 0, 1, 1, 1]], dtype=bool)
    return ProxyRecord(loss=np.ones((3, 6)), correct=correct, prob_margin=prob_margin)


SIX = np.array([[0.0], [1.0], [1.5], [10.0], [11.0], [13.0]], dtype=np.float32)


def test_beta_cutoff_before_the_per_class_graphs():
    # β = 1/6 → int(β·6) = 1 cut: sample 2; classes left {0, 1} and {3, 4, 5}: the budget 3 is split
    # equally, sparsest first: class 0 gets min(2, 3 // 2) = 1, class 1 the other 2
    data = toy_dataset([0, 0, 0, 1, 1, 1])
    sel = select(data, method="d2", ratio=0.5, features=SIX, dynamics=six_point_record(), beta=1 / 6, neighbours=1, progress=False)
    assert sel.manifest["cut"] == 1 and 2 not in sel.indices
    assert sel.scores[2] == sel.scores.min() < 0
    # class 0 {0, 1}, edge d = 1: forward 0: 1 + e⁻¹·1e-7, 1: 0 + e⁻¹·1 → keep 0
    # class 1 {3, 4, 5}, edges 3–4 (d 1), 4–5 (d 2): forward 3: e⁻¹, 4: 1 + 1e-7·(e⁻¹ + e⁻²), 5: e⁻² → pick 4;
    # reverse: 3 → e⁻¹ − e^{−0.1}·f4 = −0.54, 5 → e⁻² − e^{−0.2}·f4 = −0.68 → pick 3
    np.testing.assert_array_equal(sel.indices, [0, 3, 4])
    e1, e2 = math.exp(-1), math.exp(-2)
    np.testing.assert_allclose(sel.raw_scores[[0, 1, 3, 4, 5]], [1 + 1e-7 * e1, e1, e1, 1 + 1e-7 * (e1 + e2), e2], rtol=1e-5)
    # without the cutoff sample 2 is a candidate again (class 0 then has 3 and gets 1 of the 3)
    uncut = select(data, method="d2", ratio=0.5, features=SIX, dynamics=six_point_record(), beta=0.0, neighbours=1, progress=False)
    assert uncut.manifest["cut"] == 0 and len(uncut.indices) == 3


def test_per_class_budgets_match_the_released_bin_allocate():
    # class 0: 2 samples, class 1: 8; budget 6: released bin_allocate gives 3 // … sparsest first: 2 → min(2, 3) = 2, then 4
    features = np.arange(10, dtype=np.float32)[:, None]
    data = toy_dataset([0, 0] + [1] * 8)
    sel = select(data, method="d2", ratio=0.6, features=features, difficulty="uniform", progress=False)
    np.testing.assert_array_equal(np.bincount(data.train.label_array[sel.indices]), [2, 4])
    balanced = select(data, method="d2", ratio=0.6, features=features, difficulty="uniform", class_balanced=True, progress=False)
    np.testing.assert_array_equal(np.bincount(data.train.label_array[balanced.indices]), [1, 5])  # proportional


def reference_d2(features, difficulty, labels, budget_per_class, k, gamma):
    """GraphDensitySampler (graph_mode sum, weighted) written out densely, one class at a time."""
    kept = []
    for c, budget in enumerate(budget_per_class):
        idx = np.flatnonzero(labels == c)
        x, s = features[idx].astype(np.float64), difficulty[idx]
        dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
        connect = np.zeros_like(dist)
        for i in range(len(idx)):
            for j in np.argsort(np.where(np.arange(len(idx)) == i, np.inf, dist[i]), kind="stable")[:k]:
                connect[i, j] = np.exp(-dist[i, j]) * max(s[j], 1e-7)
                connect[j, i] = np.exp(-dist[i, j]) * max(s[i], 1e-7)
        density = connect.sum(1) + s
        chosen = []
        while len(chosen) < budget:
            sel = int(np.argmax(density))
            nb = np.flatnonzero(connect[sel] > 0)
            density[nb] -= np.exp(-dist[sel, nb] * gamma) * density[sel]
            chosen.append(sel)
            density[chosen] = density.min() - 1
        kept += list(idx[chosen])
    return np.sort(kept)


def test_select_matches_a_dense_reference_on_fixed_inputs():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    features = (rng.normal(size=(80, 3)) + 3 * labels[:, None]).astype(np.float32)
    correct = rng.random((6, 80)) < 0.7
    record = ProxyRecord(loss=np.ones((6, 80)), correct=correct, prob_margin=np.full((6, 80), 0.5))
    sel = select(toy_dataset(labels), method="d2", ratio=0.3, features=features, dynamics=record, beta=0.0, progress=False)
    forgetting = (correct[:-1] & ~correct[1:]).sum(0).astype(np.float64)
    reference = reference_d2(features, forgetting, labels, [12, 12], 5, 0.1)
    kept, ref = set(sel.indices.tolist()), set(reference.tolist())
    assert len(kept & ref) / len(kept | ref) >= 0.99


def test_default_cutoff_needs_prob_margin_and_uniform_needs_none():
    data = toy_dataset([0, 0, 0, 1, 1, 1])
    record = ProxyRecord(loss=np.ones((3, 6)), correct=np.ones((3, 6), dtype=bool), source="mine.npz")
    with pytest.raises(InputError, match="mine.npz.*'prob_margin'"):
        select(data, method="d2", ratio=0.3, features=SIX, dynamics=record, neighbours=1, progress=False)
    sel = select(data, method="d2", ratio=0.3, features=SIX, neighbours=1, difficulty="uniform", progress=False)
    assert sel.manifest["beta"] == 0.0 and len(sel.indices) == 2


def test_bad_parameters_refused():
    data = toy_dataset([0] * 5)
    with pytest.raises(InputError, match="neighbours"):
        select(data, method="d2", features=LINE, neighbours=0, difficulty="uniform", progress=False)
    with pytest.raises(InputError, match="difficulty"):
        select(data, method="d2", features=LINE, difficulty="hardness", progress=False)
