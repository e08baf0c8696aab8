import numpy as np
import pytest

from geometry_helpers import digits_features, toy_dataset
from method_contract import MethodContract
from rlselector import load_dataset, select
from rlselector.methods.moderate import class_centre_distances

# class 0 at 0, 1, 2, 3, 10 (median 2, mean 3.2); class 1 at 100, 101, 103 (median 101, mean 101⅓)
FEATURES = np.array([[0], [1], [2], [3], [10], [100], [101], [103]], dtype=np.float32)
LABELS = [0, 0, 0, 0, 0, 1, 1, 1]


class TestModerate(MethodContract):
    min_raw_auc = None  # keeps the samples nearest the median distance: a middle band, not a top (measured 0.50)
    method = "moderate"
    select_kwargs = {"features": digits_features()}


def test_distances_to_median_and_mean_centres():
    labels = np.array(LABELS)
    np.testing.assert_allclose(class_centre_distances(FEATURES, labels, 2, "median"), [2, 1, 0, 1, 8, 1, 0, 2])
    np.testing.assert_allclose(
        class_centre_distances(FEATURES, labels, 2, "mean"), [3.2, 2.2, 1.2, 0.2, 6.8, 4 / 3, 1 / 3, 5 / 3], rtol=1e-12
    )


def test_rank_band_by_hand():
    data = toy_dataset(LABELS)
    # median centre: distances (2, 1, 0, 1, 8, 1, 0, 2); sorted (stable): 2, 6, 1, 3, 5, 0, 7, 4;
    # N = 8, k = 4: ranks round((8 − 4)/2) = 2 to 5 → samples 1, 3, 5, 0
    sel = select(data, method="moderate", ratio=0.5, features=FEATURES, progress=False)
    np.testing.assert_array_equal(sel.indices, [0, 1, 3, 5])
    np.testing.assert_allclose(sel.raw_scores, [2, 1, 0, 1, 8, 1, 0, 2])
    # mean centre: distances (3.2, 2.2, 1.2, 0.2, 6.8, 4/3, 1/3, 5/3) sorted 3, 6, 2, 5, 7, 1, 0, 4 → ranks 2–5
    sel = select(data, method="moderate", ratio=0.5, features=FEATURES, center="mean", progress=False)
    np.testing.assert_array_equal(sel.indices, [1, 2, 5, 7])
    assert sel.manifest["params"]["center"] == "mean"


def test_rank_band_is_not_the_value_band_on_skewed_distances():
    # one class at 0..6, 40, 50, 60: median centre 4.5, distances 4.5 3.5 2.5 1.5 .5 .5 1.5 35.5 45.5 55.5
    features = np.array([[0], [1], [2], [3], [4], [5], [6], [40], [50], [60]], dtype=np.float32)
    data = toy_dataset([0] * 10)
    # sorted (stable): 4, 5, 3, 6, 2, 1, 0, 7, 8, 9; k = 4 from rank round(3) = 3: samples 6, 2, 1, 0
    sel = select(data, method="moderate", ratio=0.4, features=features, progress=False)
    np.testing.assert_array_equal(sel.indices, [0, 1, 2, 6])
    # the value band (closest to the median distance 3.0) takes 1, 2, then 0 and 3 of the ties at 1.5
    value = select(data, method="moderate", ratio=0.4, features=features, policy="band", progress=False)
    np.testing.assert_array_equal(value.indices, [0, 1, 2, 3])


@pytest.mark.parametrize("ratio", [0.3, 0.7])
def test_select_equals_the_released_get_prune_idx(ratio):
    features, data = digits_features(), load_dataset("digits", limit=300, seed=0)
    labels = data.train.label_array
    sel = select(data, method="moderate", ratio=ratio, features=features, progress=False)
    centres = np.stack([np.median(features[labels == c], axis=0) for c in range(10)])
    distance = np.linalg.norm(features - centres[labels], axis=1)
    order = distance.argsort(kind="stable")
    pruned = np.concatenate([order[: round(300 * (0.5 - ratio / 2))], order[round(300 * (0.5 + ratio / 2)):]])
    reference = set(range(300)) - set(pruned.tolist())
    kept = set(sel.indices.tolist())
    assert len(kept & reference) / len(kept | reference) >= 0.99


def test_unknown_centre_refused():
    from rlselector.errors import InputError

    with pytest.raises(InputError, match="center"):
        select(toy_dataset(LABELS), method="moderate", features=FEATURES, center="mode", progress=False)
