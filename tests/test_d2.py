import math

import numpy as np
import pytest

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.errors import InputError
from rlselector.methods.d2 import d2_order, knn_graph
from rlselector.selection.dynamics import ProxyRecord

# five nodes on a line; with k = 1 each links to its nearest: 0→1, 1→0, 2→1, 3→4, 4→3 (d² = 1, 1, 4, 4, 4)
LINE = np.array([[0.0], [1.0], [3.0], [10.0], [12.0]], dtype=np.float32)
DIFFICULTY = np.array([1.0, 2.0, 4.0, 1.0, 2.0])
LN2 = math.log(2.0)  # exp(−ln2·d²) = 1/2 at d² = 1 and 1/16 at d² = 4


def correct_for_forgetting():
    # forgetting events per column (1→0 transitions): 1, 2, never learnt (= E = 4), 1, 2 → DIFFICULTY
    return np.array([[1, 1, 0, 1, 1], [0, 0, 0, 1, 0], [1, 1, 0, 1, 1], [1, 0, 0, 0, 0]], dtype=bool)


class TestD2(MethodContract):
    method = "d2"
    params = {"difficulty": "uniform"}
    select_kwargs = {"features": digits_features()}


def test_knn_graph_is_sparse_and_exact():
    graph = knn_graph(LINE, 1)
    assert graph.nnz == 5
    np.testing.assert_array_equal(graph.indices, [1, 0, 1, 4, 3])
    np.testing.assert_allclose(graph.data, [1, 1, 4, 4, 4], atol=1e-4)
    graph = knn_graph(LINE, 2)
    np.testing.assert_array_equal(graph.indices.reshape(5, 2), [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2]])


def test_forward_and_reverse_message_passing_by_hand():
    graph = knn_graph(LINE, 1)
    order, forward, _ = d2_order(DIFFICULTY, graph, 5, LN2, LN2)
    # forward: s + Σ w·s_nb = 1 + ½·2, 2 + ½·1, 4 + 2/16, 1 + 2/16, 2 + 1/16
    np.testing.assert_allclose(forward, [2.0, 2.5, 4.125, 1.125, 2.0625], rtol=1e-5)
    # reverse: pick 2 (4.125) → node 1 −= 4.125/16 → 2.2421875; pick 1 → node 0 −= ½·2.2421875 → 0.87890625;
    # pick 4 (2.0625) → node 3 −= 2.0625/16 → 0.99609375; pick 3 (0.996 > 0.879); pick 0
    np.testing.assert_array_equal(order, [2, 1, 4, 3, 0])
    # without reverse passing (γ_r huge: weights 0) the order is the forward score's: 0 comes before 3
    order, _, _ = d2_order(DIFFICULTY, graph, 5, LN2, 1e9)
    np.testing.assert_array_equal(order, [2, 1, 4, 0, 3])


@pytest.mark.parametrize("difficulty", ["forgetting", "loss"])
def test_select_with_difficulty_from_dynamics(difficulty):
    record = ProxyRecord(loss=np.tile(DIFFICULTY, (4, 1)).astype(np.float32), correct=correct_for_forgetting())
    sel = select(
        toy_dataset([0] * 5), method="d2", ratio=0.8, features=LINE, dynamics=record, neighbours=1,
        gamma_forward=LN2, gamma_reverse=LN2, difficulty=difficulty, progress=False,
    )
    np.testing.assert_array_equal(sel.indices, [1, 2, 3, 4])
    s = sel.scores
    assert s[2] > s[1] > s[4] > s[3] > s[0]
    np.testing.assert_allclose(sel.raw_scores, [2.0, 2.5, 4.125, 1.125, 2.0625], rtol=1e-5)


def test_uniform_difficulty_needs_no_proxy_and_spreads_out():
    # uniform difficulty = density: two tight pairs far apart → the first two picks come from different pairs
    features = np.array([[0.0], [0.1], [50.0], [50.1]], dtype=np.float32)
    sel = select(toy_dataset([0] * 4), method="d2", ratio=0.5, features=features, neighbours=1, difficulty="uniform", progress=False)
    assert len(sel.indices) == 2 and (sel.indices < 2).sum() == 1


def test_class_balanced_builds_one_graph_per_class():
    features = np.concatenate([LINE, LINE])  # identical geometry in both classes
    data = toy_dataset([0] * 5 + [1] * 5)
    sel = select(data, method="d2", ratio=0.4, features=features, neighbours=1, difficulty="uniform",
                 gamma_forward=LN2, gamma_reverse=LN2, class_balanced=True, progress=False)
    kept = sel.indices
    assert (kept < 5).sum() == 2 and (kept >= 5).sum() == 2
    np.testing.assert_array_equal(kept[kept >= 5] - 5, kept[kept < 5])


def test_bad_parameters_refused():
    data = toy_dataset([0] * 5)
    with pytest.raises(InputError, match="neighbours"):
        select(data, method="d2", features=LINE, neighbours=0, difficulty="uniform", progress=False)
    with pytest.raises(InputError, match="difficulty"):
        select(data, method="d2", features=LINE, difficulty="hardness", progress=False)
