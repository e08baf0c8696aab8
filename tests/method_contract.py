"""The contract every selection method's tests inherit (coreax style).

A method's test module subclasses :class:`MethodContract`, sets ``method`` (and ``params`` /
``needs_features`` / ``exact_k``), and gets every check below for free; it then adds its own tiny
hand-computed case.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from rlselector import load_dataset, load_selection, select
from rlselector.errors import InputError

REQUIRED_MANIFEST = (
    "method", "params", "ratio_requested", "ratio_achieved", "n", "n_kept", "seed", "dataset",
    "per_class", "score_direction", "timings", "package_version", "class_balanced",
)


class MethodContract:
    method: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    """Small, fast parameters for the contract runs."""
    exact_k: ClassVar[bool] = True
    """The method keeps exactly round(ratio·N); otherwise within ±1 % of N."""
    ratio: ClassVar[float] = 0.3
    limit: ClassVar[int] = 300
    """Training samples of digits used by the contract runs."""
    select_kwargs: ClassVar[dict] = {}
    """Extra arguments of ``select()`` for every contract run (e.g. ``features=``)."""
    min_raw_auc: ClassVar[float | None] = 0.75
    """How far the method's own scores (``raw_scores``, before the kept samples are lifted) must rank
    its kept samples above its pruned ones: the chance that a random kept sample outscores a random
    pruned one (0.5 = unrelated, 1 = the kept set is exactly the top). A lifted random set scores 0.5.
    None: the method's rule does not keep by its score (a stratified or middle-band rule), said where set."""
    raw_keep_direction: ClassVar[int] = 1
    """+1 when a higher raw score means keep, −1 when lower does (a distance, a degree of cover)."""

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        return load_dataset("digits", limit=cls.limit, seed=0)

    @classmethod
    def run(cls, data, seed: int = 0, **kwargs):
        merged = {**cls.select_kwargs, **cls.params, **kwargs}
        return select(data, method=cls.method, ratio=merged.pop("ratio", cls.ratio), seed=seed, progress=False, **merged)

    @pytest.fixture(scope="class")
    @classmethod
    def selection(cls, data):
        return cls.run(data)

    def test_kept_count_in_band(self, data, selection):
        k = round(self.ratio * len(data))
        if self.exact_k:
            assert len(selection.indices) == k
        else:
            assert abs(len(selection.indices) - k) <= max(1, 0.01 * len(data))

    def test_indices_unique_sorted_in_range(self, data, selection):
        idx = selection.indices
        assert idx.dtype == np.int64
        assert len(np.unique(idx)) == len(idx)
        assert np.all(np.diff(idx) > 0)
        assert idx.min() >= 0 and idx.max() < len(data)

    def test_scores_are_keep_priority(self, data, selection):
        assert selection.scores.shape == (len(data),)
        assert np.isfinite(selection.scores).all()
        kept = selection.mask
        # higher = keep: every kept sample scores at least as high as every pruned one
        if kept.all():
            return
        assert selection.scores[kept].min() >= selection.scores[~kept].max()

    def test_raw_scores_explain_the_kept_set(self, data, selection):
        # The lifted ``scores`` above order any kept set; the method's own scores must order it too.
        if selection.raw_scores is None or selection.mask.all() or self.min_raw_auc is None:
            pytest.skip("the method records no scores of its own, or does not keep by them")
        assert kept_auc(self.raw_keep_direction * selection.raw_scores, selection.mask) >= self.min_raw_auc

    def test_same_seed_same_selection(self, data, selection):
        again = self.run(data, seed=0)
        np.testing.assert_array_equal(again.indices, selection.indices)
        np.testing.assert_allclose(again.scores, selection.scores)

    def test_class_balanced(self, data):
        balanced = self.run(data, class_balanced=True)
        counts = np.bincount(data.train.label_array[balanced.indices], minlength=data.num_classes)
        expected = self.ratio * data.class_counts
        assert np.all(np.abs(counts - expected) <= 1.0 + 0.01 * data.class_counts), (counts, expected)
        assert balanced.manifest["class_balanced"] is True

    def test_manifest_fields_and_round_trip(self, data, selection, tmp_path):
        for key in REQUIRED_MANIFEST:
            assert key in selection.manifest, key
        assert selection.manifest["method"] == self.method
        assert selection.manifest["score_direction"] == "higher = keep"
        assert selection.manifest["dataset"]["fingerprint"] == data.fingerprint
        assert sum(c["kept"] for c in selection.manifest["per_class"].values()) == len(selection.indices)
        from rlselector.selection import write_selection

        write_selection(tmp_path, selection)
        loaded = load_selection(tmp_path)
        np.testing.assert_array_equal(loaded.indices, selection.indices)
        assert json.loads((tmp_path / "selection.json").read_text())["n"] == len(data)
        assert len(loaded.subset(data)) == len(selection.indices)

    @pytest.mark.parametrize("bad_ratio", [0.0, -0.1, 1.5, float("nan")])
    def test_bad_ratio_refused_without_output(self, data, tmp_path, bad_ratio):
        with pytest.raises(InputError, match="ratio"):
            self.run(data, ratio=bad_ratio, out=tmp_path / "out")
        assert not (tmp_path / "out").exists()

    def test_unknown_parameter_refused(self, data):
        with pytest.raises(InputError, match="no parameter"):
            self.run(data, no_such_parameter=1)

    def test_bad_features_refused(self, data, tmp_path):
        wrong_rows = np.zeros((len(data) + 1, 4), dtype=np.float32)
        with pytest.raises(InputError, match="rows"):
            self.run(data, features=wrong_rows, out=tmp_path / "a")
        non_finite = np.zeros((len(data), 4), dtype=np.float32)
        non_finite[3, 1] = np.nan
        with pytest.raises(InputError, match="NaN"):
            self.run(data, features=non_finite, out=tmp_path / "b")
        integer = np.zeros((len(data), 4), dtype=np.int64)
        with pytest.raises(InputError, match="float"):
            self.run(data, features=integer, out=tmp_path / "c")
        assert not any((tmp_path / name).exists() for name in "abc")


def kept_auc(raw_scores: np.ndarray, kept: np.ndarray) -> float:
    """P(raw score of a random kept sample > that of a random pruned one), ties counted half (the
    Mann–Whitney statistic from average ranks)."""
    from scipy.stats import rankdata

    ranks = rankdata(raw_scores)
    n_kept, n_pruned = int(kept.sum()), int((~kept).sum())
    return float((ranks[kept].sum() - n_kept * (n_kept + 1) / 2) / (n_kept * n_pruned))
