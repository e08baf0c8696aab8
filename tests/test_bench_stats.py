"""The report's statistics by hand: paired differences (CI, t, p), the paired/Welch choice, bootstrap
rank ranges; the validation split; the ETA; --only."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from rlselector.bench.eta import Eta, duration
from rlselector.bench.render import entry_text
from rlselector.bench.stats import (
    PAIRED_TEST, WELCH_TEST, bootstrap_rank_range, build_table, competition_ranks, difference_table, paired_difference, rank_table,
)
from rlselector.errors import InputError

# five seeds of two methods at one ratio and evaluation model
A = {0: 71.2, 1: 72.0, 2: 70.5, 3: 73.1, 4: 71.8}
B = {0: 70.0, 1: 71.5, 2: 70.1, 3: 71.9, 4: 70.9}


def test_paired_difference_by_hand():
    """d = 1.2, 0.5, 0.4, 1.2, 0.9: mean 4.2 / 5 = 0.84; squared deviations 0.1296 + 0.1156 + 0.1936 + 0.1296 + 0.0036 = 0.572,
    s² = 0.572 / 4 = 0.143, s = 0.37815; se = s / √5 = 0.1691153; t = 0.84 / se = 4.96702 (4 df);
    t_{0.975, 4} = 2.776445, half-width 2.7764451 · 0.1691153 = 0.469539, CI [0.370461, 1.309539]; p = 2 P(T₄ > 4.967) = 0.0076677."""
    paired = paired_difference(A, B)
    assert paired.differences == pytest.approx((1.2, 0.5, 0.4, 1.2, 0.9))
    assert paired.n == 5 and paired.mean == pytest.approx(0.84) and paired.std == pytest.approx(math.sqrt(0.143))
    assert paired.t == pytest.approx(4.96702, abs=1e-5)
    assert (paired.low, paired.high) == (pytest.approx(0.370461, abs=1e-6), pytest.approx(1.309539, abs=1e-6))
    assert paired.half_width == pytest.approx(0.469539, abs=1e-6)
    assert paired.p == pytest.approx(0.0076677, abs=1e-7)
    reference = stats.ttest_rel(list(A.values()), list(B.values()))
    assert paired.t == pytest.approx(reference.statistic) and paired.p == pytest.approx(reference.pvalue)
    # the pairs are matched by key, not by position
    shuffled = {k: B[k] for k in (3, 0, 4, 2, 1)}
    assert paired_difference(A, shuffled).mean == pytest.approx(0.84) and paired_difference(A, shuffled).p == pytest.approx(paired.p)


def test_paired_difference_edge_cases():
    assert paired_difference({0: 1.0}, {1: 2.0}) is None  # no shared key
    one = paired_difference({0: 3.0, 1: 5.0}, {0: 1.0})
    assert (one.n, one.mean, one.low, one.high, one.t, one.p) == (1, 2.0, None, None, None, None)
    constant = paired_difference({0: 3.0, 1: 4.0}, {0: 2.0, 1: 3.0})
    assert (constant.low, constant.high, constant.t, constant.p) == (1.0, 1.0, math.inf, 0.0)
    equal = paired_difference({0: 3.0, 1: 4.0}, {0: 3.0, 1: 4.0})
    assert (equal.mean, equal.t, equal.p) == (0.0, 0.0, 1.0)


def _records(values: dict[str, dict[int, float]], ratio: float = 0.5) -> list[dict]:
    return [{"method": m, "ratio": ratio, "seed": s, "top1": v} for m, by_seed in values.items() for s, v in by_seed.items()]


def test_table_pairs_by_seed_and_falls_back_to_welch_without_pairs():
    paired = build_table(_records({"random": B, "el2n": A}), title="t", row=lambda r: r["method"], column=lambda r: r["ratio"],
                         value=lambda r: r["top1"])
    entry = paired.entry("el2n", 0.5)
    assert entry.test == PAIRED_TEST and entry.p == pytest.approx(0.0076677, abs=1e-7) and entry.significant
    # the same values under other seeds share no pair: Welch over all values (its p is larger here: the seed effect stays in)
    unpaired = build_table(_records({"random": B, "el2n": {k + 10: v for k, v in A.items()}}), title="t", row=lambda r: r["method"],
                           column=lambda r: r["ratio"], value=lambda r: r["top1"])
    entry = unpaired.entry("el2n", 0.5)
    expected = stats.ttest_ind(list(A.values()), list(B.values()), equal_var=False).pvalue
    assert entry.test == WELCH_TEST and entry.p == pytest.approx(expected) and entry.p > 0.05


def test_a_signed_mean_keeps_its_sign_and_the_std_has_none():
    records = [{"method": "m", "ratio": 0.9, "seed": s, "change": v} for s, v in enumerate([1.0, 4.0, -2.0])]
    table = build_table(records, title="t", row=lambda r: r["method"], column=lambda r: r["ratio"], value=lambda r: r["change"],
                        test=False, mark_best=False, fmt="{:+.1f}")
    assert entry_text(table, "m", 0.9) == "+1.0 ± 3.0"


def test_difference_table_holds_the_paired_ci():
    table = difference_table(_records({"random": B, "el2n": A}), title="d", row=lambda r: r["method"], column=lambda r: r["ratio"],
                             value=lambda r: r["top1"])
    assert table.rows == ["el2n"]  # random is the baseline, not a row
    entry = table.entry("el2n", 0.5)
    assert (entry.mean, entry.low, entry.high) == (pytest.approx(0.84), pytest.approx(0.370461, abs=1e-6), pytest.approx(1.309539, abs=1e-6))
    assert entry.n == 5 and entry.test == PAIRED_TEST


def test_competition_ranks_share_the_better_rank():
    assert competition_ranks(np.array([3.0, 5.0, 3.0, 1.0])).tolist() == [2, 1, 2, 4]
    assert competition_ranks(np.array([3.0, 5.0, 3.0, 1.0]), higher_is_better=False).tolist() == [2, 4, 2, 1]


def test_bootstrap_rank_range():
    # "top" beats everyone in every seed: always rank 1; "x" and "y" swap places seed by seed
    values = {"top": {0: 90.0, 1: 91.0, 2: 92.0}, "x": {0: 80.0, 1: 85.0, 2: 81.0}, "y": {0: 84.0, 1: 80.0, 2: 82.0}}
    ranges = bootstrap_rank_range(values)
    assert ranges["top"] == (1, 1, 1)
    # means: x 82.0, y 82.0 → a tie, both rank 2; over the draws each is 2nd or 3rd
    assert ranges["x"] == (2, 2, 3) and ranges["y"] == (2, 2, 3)
    assert bootstrap_rank_range(values) == ranges  # seeded: the same range every time
    # one seed: the rank and no range
    assert bootstrap_rank_range({"a": {0: 1.0}, "b": {0: 2.0}}) == {"a": (2, None, None), "b": (1, None, None)}
    # only the seeds every row holds are drawn
    assert bootstrap_rank_range({"a": {0: 1.0, 1: 9.0}, "b": {0: 2.0}}) == {"a": (2, None, None), "b": (1, None, None)}


def test_rank_table_uses_the_bootstrap_range():
    values = {"random": {0: 80.0, 1: 81.0}, "el2n": {0: 85.0, 1: 86.0}}
    table = rank_table(_records(values), title="r", row=lambda r: r["method"], column=lambda r: r["ratio"], value=lambda r: r["top1"])
    assert (table.entry("el2n", 0.5).mean, table.entry("el2n", 0.5).low, table.entry("el2n", 0.5).high) == (1.0, 1.0, 1.0)
    assert table.entry("random", 0.5).mean == 2.0


# --------------------------------------------------------------------------------------------
# the validation split
# --------------------------------------------------------------------------------------------
def test_validation_split_is_stratified_seeded_and_disjoint(digits):
    from rlselector.bench.data import carve_validation

    remaining, held, indices = carve_validation(digits, 0.1, seed=0)
    n = len(digits)
    assert len(held) == len(indices) == round(0.1 * n) and len(remaining) == n - len(indices)
    # the remaining training samples are exactly the others, in order; the held-out labels are theirs
    assert np.array_equal(remaining.parent_indices, np.setdiff1d(np.arange(n), indices))
    assert np.array_equal(held.label_array, digits.train.label_array[indices])
    # stratified: each class holds out 10 % of its samples, to within one
    counts, held_counts = np.bincount(digits.train.label_array), np.bincount(held.label_array, minlength=10)
    assert np.all(np.abs(held_counts - 0.1 * counts) <= 1)
    # seeded
    assert np.array_equal(carve_validation(digits, 0.1, seed=0)[2], indices)
    assert not np.array_equal(carve_validation(digits, 0.1, seed=1)[2], indices)
    assert remaining.fingerprint != digits.fingerprint and np.array_equal(remaining.test.label_array, digits.test.label_array)
    for bad in (0.0, 0.5, 0.7):
        with pytest.raises(InputError, match=r"\(0, 0.5\)"):
            carve_validation(digits, bad, seed=0)


@pytest.mark.parametrize("value", [0, 0.5, 0.9, -0.1, True, "10%"])
def test_grid_refuses_validation_outside_the_open_interval(value):
    from rlselector.bench import config_from_dict

    with pytest.raises(InputError, match=r"validation: .*\(0, 0\.5\)"):
        config_from_dict({"data": "digits", "methods": ["random"], "ratios": [0.5], "validation": value})


# --------------------------------------------------------------------------------------------
# ETA and --only
# --------------------------------------------------------------------------------------------
def test_eta_means_per_kind():
    eta = Eta(["full", "eval", "eval", "eval", "dunn"], done=3)
    assert eta.line() == "3 cells done, 5 left" and eta.seconds_left() is None
    eta.finished("full", 60.0)
    eta.finished("eval", 30.0)
    eta.finished("eval", 10.0, timed=False)  # a failed cell: done, not timed
    # left: 1 eval at 30 s + 1 dunn (not timed yet: the mean of every timed cell, (60 + 30) / 2 = 45 s) = 75 s
    assert eta.seconds_left() == pytest.approx(75.0)
    assert eta.line() == "6 cells done, 2 left; s/cell: eval 30, full 60 → about 75 s left"
    assert (duration(42), duration(16 * 60), duration(3 * 3600 + 5 * 60)) == ("42 s", "16 min", "3 h 05 min")


def test_eta_estimates_an_untimed_selection_by_the_other_selections():
    eta = Eta(["eval+el2n", "eval+grand", "eval", "full"], done=0)
    eta.finished("eval+el2n", 600.0)
    eta.finished("eval", 30.0)
    # left: grand's selection at the mean of the timed selections (600 s), not of every cell (315 s);
    # the full-data cell (no timed kind of its base) at the mean of every timed cell, (600 + 30) / 2
    assert eta.seconds_left() == pytest.approx(600.0 + 315.0)
    assert eta.line() == "2 cells done, 2 left; s/cell: eval 30, eval+el2n 600 → about 15 min left"


def test_only_restricts_the_grid_to_named_methods():
    from rlselector.bench import config_from_dict, restrict_methods
    from rlselector.bench.plan import plan_cells

    config = config_from_dict({"data": "digits", "methods": ["random", "el2n", "herding"], "ratios": [0.5], "analysis": False,
                               "method_params": {"el2n": {"policy": "keep-lowest"}}})
    only = restrict_methods(config, ["herding", "el2n"])
    assert only.methods == ("el2n", "herding") and only.method_params == {"el2n": {"policy": "keep-lowest"}}
    # the restricted grid's cells are the full grid's cells (same keys)
    assert {c.key for c in plan_cells(only, "sha256:x")} < {c.key for c in plan_cells(config, "sha256:x")}
    with pytest.raises(InputError, match=r"\['kcenter'\] not among the grid's methods.*random, el2n, herding"):
        restrict_methods(config, ["el2n", "kcenter"])


def test_seeds_split_a_grid_into_chunks_whose_cells_are_the_grids_own():
    from rlselector.bench import GRIDS, config_from_dict, restrict_seeds
    from rlselector.bench.plan import plan_cells

    config = config_from_dict(GRIDS["cpu-full"])
    keys = lambda c: {cell.key for cell in plan_cells(c, "sha256:x")}
    chunks = [restrict_seeds(config, [0]), restrict_seeds(config, [1, 2])]
    # the two chunks plan exactly the grid's cells, without overlap
    assert keys(chunks[0]) | keys(chunks[1]) == keys(config) and not keys(chunks[0]) & keys(chunks[1])
    # the analysis (Dunn index and t-SNE of seed 0) goes with the chunk holding seed 0 only
    assert chunks[0].analysis == config.analysis and chunks[1].analysis is None
    # a seed beyond the grid's extends it with cells the grid does not have
    extended = restrict_seeds(config, [3])
    assert extended.seeds == (3,) and not keys(extended) & keys(config)
    assert {cell.seed for cell in plan_cells(extended, "sha256:x")} == {3}
    for bad, message in (([], "give a comma-separated list"), ([1, 1], "distinct non-negative"), ([-1], "distinct non-negative")):
        with pytest.raises(InputError, match=message):
            restrict_seeds(config, bad)


def test_the_cpu_grids_share_cpu_fulls_cells_where_they_overlap():
    """cpu-noise's clean half and cpu-transfer's pre-trainings are cpu-full's own cells (one protocol), so a
    directory holding cpu-full's cells runs only their new cells."""
    from rlselector.bench import GRIDS, config_from_dict
    from rlselector.bench.plan import plan_cells

    full = {c.key for c in plan_cells(config_from_dict(GRIDS["cpu-full"]), "sha256:x")}
    noise = plan_cells(config_from_dict(GRIDS["cpu-noise"]), "sha256:x")
    clean = {c.key for c in noise if c.noise == 0.0}
    assert len(clean) == 3 + 7 * 2 * 3 and clean <= full and not {c.key for c in noise if c.noise} & full
    transfer = plan_cells(config_from_dict(GRIDS["cpu-transfer"]), "sha256:x", "sha256:y")
    sources = {c.key for c in transfer if c.kind in ("full", "eval")}
    assert len(sources) == 3 + 6 * 2 * 3 and sources <= full
    assert config_from_dict(GRIDS["cpu-transfer"]).transfer.recipe.recalibrate_bn is True


def test_cli_only_and_split_are_checked(tmp_path):
    from typer.testing import CliRunner

    from rlselector.cli import app

    result = CliRunner().invoke(app, ["bench", "--grid", "cpu-cross-arch", "--only", "random,no-such", "--out", str(tmp_path / "out")])
    output = " ".join(result.output.split())
    assert result.exit_code == 2 and "--only: ['no-such'] not among the grid's methods" in output and "random, rl-selector" in output
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(app, ["bench", "--grid", "cpu-cross-arch", "--seeds", "0,x", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--seeds '0,x': give comma-separated integers" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--split", "train"])
    assert result.exit_code == 2 and "--split 'train': choose one of test, validation" in " ".join(result.output.split())
