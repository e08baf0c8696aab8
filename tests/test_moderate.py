import numpy as np

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import select
from rlselector.methods.moderate import class_centre_distances

# class 0 at 0, 1, 2, 3, 10 (median 2, mean 3.2); class 1 at 100, 101, 103 (median 101, mean 101⅓)
FEATURES = np.array([[0], [1], [2], [3], [10], [100], [101], [103]], dtype=np.float32)
LABELS = [0, 0, 0, 0, 0, 1, 1, 1]


class TestModerate(MethodContract):
    method = "moderate"
    select_kwargs = {"features": digits_features()}


def test_distances_to_median_and_mean_centres():
    labels = np.array(LABELS)
    np.testing.assert_allclose(class_centre_distances(FEATURES, labels, 2, "median"), [2, 1, 0, 1, 8, 1, 0, 2])
    np.testing.assert_allclose(
        class_centre_distances(FEATURES, labels, 2, "mean"), [3.2, 2.2, 1.2, 0.2, 6.8, 4 / 3, 1 / 3, 5 / 3], rtol=1e-12
    )


def test_band_around_the_median_distance():
    data = toy_dataset(LABELS)
    # median centre: distances (2, 1, 0, 1, 8, 1, 0, 2), median 1 → |d − 1| = (1, 0, 1, 0, 7, 0, 1, 1):
    # keep 1, 3, 5 and the first of the ties at 1 (index 0)
    sel = select(data, method="moderate", ratio=0.5, features=FEATURES, progress=False)
    np.testing.assert_array_equal(sel.indices, [0, 1, 3, 5])
    np.testing.assert_allclose(sel.raw_scores, [2, 1, 0, 1, 8, 1, 0, 2])
    # mean centre: median distance (4/3 + 5/3)/2 = 1.5 → |d − 1.5| smallest at 5, 7 (1/6), 2 (0.3), 1 (0.7)
    sel = select(data, method="moderate", ratio=0.5, features=FEATURES, center="mean", progress=False)
    np.testing.assert_array_equal(sel.indices, [1, 2, 5, 7])
    assert sel.manifest["params"]["center"] == "mean"


def test_unknown_centre_refused():
    import pytest

    from rlselector.errors import InputError

    with pytest.raises(InputError, match="center"):
        select(toy_dataset(LABELS), method="moderate", features=FEATURES, center="mode", progress=False)
