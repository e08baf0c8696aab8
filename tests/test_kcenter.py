import numpy as np

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.methods.kcenter import kcenter_order

LINE = np.array([[0.0], [1.0], [2.0], [6.0], [10.0]], dtype=np.float32)


class TestKCenter(MethodContract):
    method = "kcenter"
    select_kwargs = {"features": digits_features()}

    def test_other_seed_other_first_centre(self, data, selection):
        other = self.run(data, seed=1)
        assert not np.array_equal(other.indices, selection.indices)


def test_kcenter_order_on_a_line_by_hand():
    # from 2: nearest² = (4, 1, 0, 16, 64) → 10; then (4, 1, 0, 16, 0) → 6; then (4, 1, 0, 0, 0) → 0; then 1
    order, nearest = kcenter_order(LINE, 5, first=2)
    np.testing.assert_array_equal(order, [2, 4, 3, 0, 1])
    np.testing.assert_array_equal(nearest, 0.0)
    # from 0: (0, 1, 4, 36, 100) → 10; (0, 1, 4, 16, 0) → 6; (0, 1, 4, 0, 0) → 2; then 1
    order, nearest = kcenter_order(LINE, 3, first=0)
    np.testing.assert_array_equal(order, [0, 4, 3])
    np.testing.assert_allclose(nearest, [0, 1, 4, 0, 0], atol=1e-5)  # float32 products on centred rows


def test_duplicates_are_never_picked_twice():
    order, _ = kcenter_order(np.zeros((4, 3), dtype=np.float32), 3, first=1)
    np.testing.assert_array_equal(order, [1, 0, 2])


def test_select_priority_is_reverse_selection_order():
    # 'central' starts at the sample closest to the mean 3.8, i.e. 2 (index 2)
    sel = select(toy_dataset([0] * 5), method="kcenter", ratio=0.6, features=LINE, start="central", progress=False)
    np.testing.assert_array_equal(sel.indices, [2, 3, 4])
    s = sel.scores
    assert s[2] > s[4] > s[3] > s[0] > s[1]  # picks 2, 4, 3; then 0 (2 from a centre) before 1 (1 away)


def test_class_balanced_runs_per_class():
    # class 0 on the line, class 1 = the line shifted by 1000: each class gets its own quota and start
    features = np.concatenate([LINE, LINE + 1000.0])
    data = toy_dataset([0] * 5 + [1] * 5)
    sel = select(data, method="kcenter", ratio=0.6, features=features, start="central", class_balanced=True, progress=False)
    np.testing.assert_array_equal(sel.indices, [2, 3, 4, 7, 8, 9])
    # globally, the first centre (closest to the mean 503.8: index 4, at 10) is followed by the far class
    glob = select(data, method="kcenter", ratio=0.2, features=features, start="central", progress=False)
    np.testing.assert_array_equal(glob.indices, [4, 9])
