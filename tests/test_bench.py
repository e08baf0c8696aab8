"""Benchmark harness: grid config, resumable runner, report tables, label noise, transfer."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from rlselector.bench import GRIDS, config_from_dict, load_bench_config, run_bench
from rlselector.bench.data import flip_labels, with_label_noise
from rlselector.bench.report import write_report
from rlselector.errors import InputError

TINY_RECIPE = {"base": "cpu-tiny", "epochs": 1, "batch_size": 32}
TINY_PROXY = {"width": 4, "epochs": 2, "batch_size": 64, "record_epochs": [1, 2]}


def tiny_grid(**overrides):
    spec = {
        "name": "tiny", "data": "digits", "limit": 300, "methods": ["random", "el2n"], "ratios": [0.3, 0.6], "seeds": [0, 1],
        "models": [{"name": "resnet18", "width": 4}, {"name": "vgg16", "width": 4}], "recipe": TINY_RECIPE, "proxy": TINY_PROXY,
        "analysis": {"max_samples": 150, "tsne": {"method": "el2n", "ratio": 0.6, "samples": 120}},
    }
    spec.update(overrides)
    return config_from_dict(spec)


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "out"
    summary = run_bench(tiny_grid(), out, progress=False)
    return out, summary


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, message",
    [
        ({"methods": ["random", "no-such-method"]}, "not registered"),
        ({"ratios": [0.0]}, "share of training samples to KEEP"),
        ({"ratios": [30]}, "share of training samples to KEEP"),
        ({"models": ["resnet1000"]}, "unknown model"),
        ({"recipe": "no-such-recipe"}, "unknown recipe"),
        ({"recipe": {"base": "cpu-tiny", "epoch": 3}}, "unknown training option"),
        ({"method_params": {"el2n": {"sedes": 2}}}, "no parameter"),
        ({"method_params": {"herding": {}}}, "does not run"),
        ({"label_noise": [1.5]}, "label noise"),
        ({"colour": "red"}, "unknown key"),
        ({"analysis": {"tsne": {"method": "random", "ratio": 0.9}}}, "names no cell"),
        ({"data": "cifar10"}, "needs a path"),
        ({"proxy": {"widht": 3}}, "proxy"),
        ({"recipe": {"preset": "cpu-tiny", "epochs": 1}}, "recipe: the key 'preset' was renamed to 'base'"),
        ({"proxy": {"preset": "cpu-tiny", "width": 4}}, "proxy: the key 'preset' was renamed to 'base'"),
        ({"transfer": {"data": "digits", "recipe": {"preset": "cpu"}}}, "transfer.recipe: the key 'preset' was renamed to 'base'"),
        ({"runtime": {"amp": "fp8"}}, "runtime: --amp must be off, bf16 or fp16"),
        ({"runtime": {"device": "tpu"}}, "runtime: .*device"),
        ({"runtime": {"precision": "bf16"}}, "runtime: unknown key"),
        ({"runtime": "cuda"}, "runtime: must be a mapping"),
    ],
)
def test_bad_grid_is_refused_before_any_work(change, message):
    with pytest.raises(InputError, match=message):
        tiny_grid(**change)


def test_grids_load_or_name_what_is_missing():
    """Every built-in grid is valid; one listing a method not registered yet says which, and none is skipped."""
    from rlselector.api import list_methods
    from rlselector.selection import METHODS

    list_methods()
    for name, spec in GRIDS.items():
        needs_root = spec["data"] in ("cifar10", "cifar100", "tiny-imagenet")
        missing = [m for m in spec["methods"] if m not in METHODS]
        if missing:
            with pytest.raises(InputError, match="not registered"):
                load_bench_config(grid=name, data_root="/data" if needs_root else None)
            continue
        config = load_bench_config(grid=name, data_root="/data" if needs_root else None)
        assert config.methods == tuple(spec["methods"])
        if needs_root:
            with pytest.raises(InputError, match="needs a path"):
                load_bench_config(grid=name)
    with pytest.raises(InputError, match="known grids"):
        load_bench_config(grid="cpu-nothing")
    with pytest.raises(InputError, match="exactly one"):
        load_bench_config()


def test_every_method_grids_follow_the_registry():
    """"Every method" and the recipes of the target-training methods are read from the registry, not listed twice."""
    from rlselector.api import list_methods

    names = [m.name for m in list_methods()]
    training = {m.name for m in list_methods() if "target-training" in m.inputs}
    assert GRIDS["cpu-full"]["methods"] == names and training == {"rl-selector", "cover-static"}
    assert set(GRIDS["cpu-full"]["method_params"]) == training


def test_bench_command_refuses_a_bad_runtime_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from rlselector.cli import app

    result = CliRunner().invoke(app, ["bench", "--grid", "cpu-quick", "--amp", "fp8", "--out", str(tmp_path / "b")])
    assert result.exit_code != 0 and "--device/--amp: --amp must be off, bf16 or fp16" in result.output
    assert not (tmp_path / "b").exists()


def test_bench_command_takes_grid_and_its_old_name_preset():
    from typer.testing import CliRunner

    from rlselector.cli import app

    for option in ("--grid", "--preset"):
        result = CliRunner().invoke(app, ["bench", option, "cpu-nothing"])
        assert result.exit_code == 2 and "known grids: cpu-quick" in " ".join(result.output.split())


def test_yaml_file_is_the_grid_schema(tmp_path):
    spec = {"data": "digits", "limit": 200, "methods": ["random"], "ratios": [0.5], "seeds": [0, 1], "recipe": TINY_RECIPE,
            "models": ["resnet18"], "width": 4, "label_noise": 0.1}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    config = load_bench_config(path=path)
    assert config.name == "grid" and config.models[0].width == 4 and config.label_noise == (0.1,)
    assert config.recipe.epochs == 1 and config.recipe.batch_size == 32
    path.write_text("- just a list\n")
    with pytest.raises(InputError, match="mapping"):
        load_bench_config(path=path)


# --------------------------------------------------------------------------------------------
# the runner
# --------------------------------------------------------------------------------------------
def _cells(out: Path, folder: str = "cells") -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in (out / folder).glob("*.json")}


def test_grid_stores_every_cell_once_and_reuses_selections(tiny_results):
    out, summary = tiny_results
    cells = _cells(out)
    # 2 methods x 2 ratios x 2 seeds x 2 models + full data for 2 seeds x 2 models
    assert summary.total == 16 + 4 + 4 + 1 and summary.computed == summary.total and not summary.failed
    assert len(cells) == 20 and len({c["key"] for c in cells.values()}) == 20
    evals = [c for c in cells.values() if c["kind"] == "eval"]
    for c in evals:
        assert 0.0 <= c["top1"] <= 100.0 and c["top1"] <= c["top5"]
        assert c["n_train"] == c["selection"]["n_kept"] == round(c["ratio"] * 300)
    # one selection per (method, ratio, seed), shared by both evaluation models
    assert len({c["selection"]["dir"] for c in evals}) == 8 == len(list((out / "selections").iterdir()))
    # the proxy is trained once per seed and charged to every el2n selection
    for c in evals:
        sel = c["selection"]
        if c["method"] == "el2n":
            assert sel["proxy_s"] + sel["proxy_shared_s"] > 0
            assert sel["cost_s"] == pytest.approx(sel["selection_s"] + sel["proxy_s"] + sel["proxy_shared_s"])
        else:
            assert sel["proxy_s"] == sel["proxy_shared_s"] == 0
    # checkpoints are removed once a cell is stored
    assert not list((out / "runs").rglob("checkpoint.pt"))
    analysis = _cells(out, "analysis")
    assert {c["kind"] for c in analysis.values()} == {"dunn", "tsne"}
    assert (out / next(c["png"] for c in analysis.values() if c["kind"] == "tsne")).stat().st_size > 5000


def test_the_eta_charges_each_selection_to_the_cell_that_computes_it(tiny_results, tmp_path):
    from rlselector.bench.execute import GridRunner
    from rlselector.bench.plan import plan_cells

    def kinds(out):
        runner = GridRunner(tiny_grid(), out, progress=False)
        cells = plan_cells(runner.config, runner.dataset(0.0).fingerprint)
        return [(cell.kind, cell.method, cell.model.name if cell.model else None) for cell in cells], runner._eta_kinds(cells), cells

    labels, fresh, cells = kinds(tmp_path / "new")
    # before any selection is stored, the first model of each (method, ratio, seed) computes it: 8 selections
    computing = [labels[i] for i, cell in enumerate(cells) if fresh[cell.key].startswith("eval+")]
    assert len(computing) == 8 and {m for _, m, model in computing} == {"random", "el2n"} and {model for *_, model in computing} == {"resnet18"}
    assert {fresh[c.key] for c in cells if c.kind == "eval"} == {"eval", "eval+random", "eval+el2n"}
    # once stored, no cell computes a selection
    _, stored, cells = kinds(tiny_results[0])
    assert {stored[c.key] for c in cells if c.kind == "eval"} == {"eval"}


def test_second_run_redoes_nothing(tiny_results):
    out, _ = tiny_results
    before = {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    summary = run_bench(tiny_grid(), out, progress=False)
    assert summary.computed == 0 and summary.skipped == summary.total
    assert {p: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")} == before


def test_a_second_writer_is_refused(tiny_results):
    from rlselector.io import output_lock

    out, _ = tiny_results
    with output_lock(out, "rlselector bench"):
        with pytest.raises(InputError, match="another 'rlselector bench'"):
            run_bench(tiny_grid(), out, progress=False)


def test_report_of_a_run(tiny_results):
    out, _ = tiny_results
    folder = next((out / "selections").glob("el2n-r0.30-s0-*"))  # a method's own diagnostics are embedded
    (folder / "work").mkdir(exist_ok=True)
    (folder / "work" / "curves.png").write_bytes(next((out / "analysis").glob("*.png")).read_bytes())
    (folder / "diagnostics.log").write_text("epoch 1 ratio 0.31 reward -0.2\n")
    paths = write_report(out)
    assert set(paths) == {"html", "markdown", "summary_csv", "cells_csv", "per_class_csv"}
    page = paths["html"].read_text()
    assert page.count("data:image/png;base64,") >= 6  # accuracy, cost, per-class, t-SNE, ...
    assert "<img" in page and 'src="http' not in page  # self-contained
    for expected in ("Clean labels", "Cross-architecture", "Dunn index", "t-SNE", "full-data", "el2n", "Welch",
                     "Method diagnostics", "work/curves.png", "epoch 1 ratio 0.31 reward -0.2"):
        assert expected in page
    assert len(list(csv.DictReader(paths["cells_csv"].open()))) == 25
    tables = [r["table"] for r in csv.DictReader(paths["summary_csv"].open())]
    for title in ("Dunn index of the selected set", "Dunn index change vs the full set at equal size (%)"):  # both tables hold entries
        assert any(t.endswith(f": {title}") for t in tables), title
    per_class = list(csv.DictReader(paths["per_class_csv"].open()))
    assert len(per_class) == 8 * 10  # 8 selections x 10 digit classes
    assert all(int(r["kept"]) <= int(r["total"]) for r in per_class)


# --------------------------------------------------------------------------------------------
# report tables from hand-made cells
# --------------------------------------------------------------------------------------------
def _hand_cell(method, ratio, seed, top1, kind="eval"):
    key = f"{method}{ratio}{seed}".replace(".", "")
    sel = None if kind == "full" else {
        "dir": f"selections/{key}", "n": 100, "n_kept": int(100 * ratio), "cost_s": 1.0 + seed, "selection_s": 1.0, "proxy_s": 0.0,
        "per_class": {"a": {"kept": int(50 * ratio), "total": 50}, "b": {"kept": int(50 * ratio), "total": 50}},
    }
    return {
        "key": key, "kind": kind, "label": key, "method": method, "ratio": ratio, "seed": seed, "model": "resnet18", "width": 8,
        "noise": {"rate": 0.0, "seed": None, "flipped": 0}, "data": {"name": "toy"}, "top1": top1, "top5": 99.0, "train_s": 2.0,
        "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "schedule": "cosine", "weight_decay": 5e-4}, "selection": sel,
    }


HAND = {
    ("random", 0.3): [80.0, 82.0, 84.0], ("el2n", 0.3): [86.0, 87.0, 88.0], ("rl-selector", 0.3): [90.0, 90.5, 91.0],
    ("random", 0.5): [88.0, 89.0, 90.0], ("el2n", 0.5): [89.0, 91.0, 90.0], ("rl-selector", 0.5): [87.0, 89.0, 88.0],
}
"""Seeds 0, 1, 2 of each (method, ratio): every method's pairs with random are matched by seed."""


def test_report_tables_from_hand_made_cells(tmp_path):
    (tmp_path / "cells").mkdir()
    cells = [_hand_cell(m, r, s, v) for (m, r), values in HAND.items() for s, v in enumerate(values)]
    cells += [_hand_cell("full-data", 1.0, s, v, kind="full") for s, v in enumerate([95.0, 96.0, 97.0])]
    for c in cells:
        (tmp_path / "cells" / f"{c['key']}.json").write_text(json.dumps(c))
    natural = {0.3: [0.305, 0.312, 0.298], 0.5: [0.5, 0.492, 0.511]}  # RL-Selector's manifests: 4 of 6 inside ±0.01
    for c in cells:
        if c["method"] == "rl-selector":
            (tmp_path / c["selection"]["dir"]).mkdir(parents=True)
            (tmp_path / c["selection"]["dir"] / "selection.json").write_text(json.dumps({"natural_ratio": natural[c["ratio"]][c["seed"]]}))
    paths = write_report(tmp_path)
    md = paths["markdown"].read_text()
    natural_table = md[md.index("#### natural kept share"):].split("\n\n")[1].splitlines()
    assert natural_table[2] == "| rl-selector | 0.305 ± 0.007 | 0.501 ± 0.010 |"
    assert "Runs ending inside the ±1-point band without enforcement: rl-selector: 4 of 6." in md
    table = md[md.index("#### test top-1"):].split("\n\n")[1]
    rows = {line.split("|")[1].strip(): [x.strip() for x in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    # mean ± sample std by hand; best per column bold; * = paired p < 0.05 against random
    assert rows["full-data"] == ["96.00 ± 1.00", "96.00 ± 1.00"]  # the reference row, in every column, never bold
    assert rows["random"] == ["82.00 ± 2.00", "89.00 ± 1.00"]
    assert rows["rl-selector"] == ["**90.50 ± 0.50** *", "88.00 ± 1.00"]
    assert rows["el2n"][1] == "**90.00 ± 1.00**"
    assert list(rows) == ["full-data", "rl-selector", "random", "el2n"]  # references, then the project's method order
    # RL-Selector's standing in words: its mean against the best other mean, per column, with the bootstrap range of its
    # rank: at 30 % it leads in every seed (always 1); at 50 % el2n leads it in every seed and random in seeds 0 and 2, a
    # tie in seed 1, so a draw of seed 1 alone (chance 1/27 = 3.7 % > 2.5 %) ranks it 2
    assert ("rl-selector against the other methods (mean top-1, points): 30 %: 90.50, ahead of the best other (el2n, 87.00) "
            "by 3.50, rank 1 of 3 (95 % bootstrap range 1–1); 50 %: 88.00, behind el2n (90.00) by 2.00, rank 3 of 3 "
            "(95 % bootstrap range 2–3).") in md
    # paired differences from random: at 30 % el2n 6, 5, 4 → mean 5, s = 1, t(2) = 5 / (1/√3) = 8.66, CI 5 ± 4.303/√3 = [2.52, 7.48]
    diffs = md[md.index("#### test top-1 minus random"):].split("\n\n")[1].splitlines()
    assert diffs[2] == "| rl-selector | +8.50 [+4.77, +12.23] * | -1.00 [-3.48, +1.48] |"
    assert diffs[3] == "| el2n | +5.00 [+2.52, +7.48] * | +1.00 [-1.48, +3.48] |"
    assert ("Measured 95 % CI half-width of rl-selector − random (test top-1, points, paired over seeds, clean): "
            "30 %: ±3.73 (n = 3); 50 %: ±2.48 (n = 3).") in md
    # ranks at 50 %: random never beats el2n (differences -1, -2, 0) nor trails rl-selector (+1, 0, +2): 2, or 1 when only seed 2 is drawn
    ranks = md[md.index("#### rank by mean test top-1"):].split("\n\n")[1].splitlines()
    assert ranks[2:] == ["| rl-selector | 1 [1, 1] | 3 [2, 3] |", "| random | 3 [3, 3] | 2 [1, 2] |", "| el2n | 2 [2, 2] | 1 [1, 1] |"]
    summary = {(r["table"].split(": ", 1)[-1], r["method"], r["column"]): r for r in csv.DictReader(paths["summary_csv"].open())}
    for (method, ratio), values in HAND.items():
        row = summary[("test top-1 % by selection ratio", method, f"{100 * ratio:g} %")]
        assert float(row["mean"]) == pytest.approx(np.mean(values)) and float(row["std"]) == pytest.approx(np.std(values, ddof=1))
        if method == "random":
            assert row["p_vs_random"] == ""
        else:
            expected = stats.ttest_rel(values, HAND[("random", ratio)]).pvalue
            assert float(row["p_vs_random"]) == pytest.approx(expected, rel=1e-5) and row["test"] == "paired"
            assert (row["significant"] == "True") == (expected < 0.05)
    # el2n vs random at 30 %: paired t(2) = 8.66 → p = 0.0131 (significant); at 50 %: differences 1, 2, 0 → t = 1.73, p = 0.23 (not)
    assert rows["el2n"] == ["87.00 ± 1.00 *", "**90.00 ± 1.00**"]
    assert "Welch" in paths["html"].read_text() and "<b>90.50 ± 0.50</b> *" in paths["html"].read_text()


def test_report_refuses_an_empty_directory(tmp_path):
    with pytest.raises(InputError, match="no stored cells"):
        write_report(tmp_path)
    with pytest.raises(InputError, match="not a directory"):
        write_report(tmp_path / "missing")


# --------------------------------------------------------------------------------------------
# the report reads a results directory as untrusted input
# --------------------------------------------------------------------------------------------
def _crafted(tmp_path, change=lambda cell: None, *, analysis=(), per_class=None):
    """A results directory of hand-made cells; ``change`` edits the first el2n cell, ``analysis`` adds
    analysis cells, ``per_class`` replaces every selection's kept-per-class counts."""
    cells = [_hand_cell(m, r, s, v) for (m, r), values in HAND.items() for s, v in enumerate(values)]
    for c in cells:
        c["selection"]["per_class"] = per_class or c["selection"]["per_class"]
    change(next(c for c in cells if c["method"] == "el2n"))
    for folder, records in (("cells", cells), ("analysis", analysis)):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        for c in records:
            (tmp_path / folder / f"{c['key']}.json").write_text(json.dumps(c))
    return tmp_path


def _tsne_cell(png):
    return {"key": "tsne0", "kind": "tsne", "label": "tsne-el2n", "method": "el2n", "ratio": 0.3, "seed": 0, "model": "resnet18",
            "width": 8, "png": png, "features_from": "full-s0"}


@pytest.mark.parametrize(
    "crafted, field",
    [
        (lambda tmp: _crafted(tmp, analysis=[_tsne_cell("../../../../etc/passwd")]), "png"),
        (lambda tmp: _crafted(tmp, analysis=[_tsne_cell("/etc/passwd")]), "png"),
        (lambda tmp: _crafted(tmp, lambda c: c["selection"].update(dir="../../../../etc")), "selection.dir"),
    ],
)
def test_report_refuses_a_path_leading_out_of_the_results_directory(tmp_path, crafted, field):
    results = crafted(tmp_path / "results")
    with pytest.raises(InputError, match=rf"\.json: field '{re.escape(field)}': .* leads outside the results directory.*"
                                         r"relative to the results directory.*run the grid again"):
        write_report(results)
    assert not (results / "report").exists()  # nothing of /etc reached a figure or the page


def test_report_refuses_a_link_leading_out_of_the_results_directory(tmp_path):
    results = _crafted(tmp_path)
    el2n = json.loads(next((results / "cells").glob("el2n030*.json")).read_text())
    (results / el2n["selection"]["dir"]).mkdir(parents=True)
    (results / el2n["selection"]["dir"] / "diag.log").symlink_to("/etc/passwd")
    with pytest.raises(InputError, match=r"diag\.log: .*leads outside the results directory.*remove that link"):
        write_report(results)


def test_report_refuses_a_cell_without_kind(tmp_path):
    results = _crafted(tmp_path, lambda c: c.pop("kind"))
    with pytest.raises(InputError, match=r"el2n030\.json: field 'kind' is missing.*run the grid again"):
        write_report(results)
    results = _crafted(tmp_path, lambda c: c["selection"].pop("dir"))
    with pytest.raises(InputError, match=r"el2n030\.json: field 'selection\.dir' is missing from this eval cell"):
        write_report(results)


def test_report_escapes_names_in_markdown_and_neutralises_csv_formulas(tmp_path):
    tag, formula = "<img src=x onerror=alert(1)>", "=HYPERLINK(\"http://x\",\"y\")"

    per_class = {tag: {"kept": 1, "total": 2}, formula: {"kept": 1, "total": 2}, "@SUM(A1)": {"kept": 0, "total": 2}}
    paths = write_report(_crafted(tmp_path, lambda c: c.update(method=f"{tag}|x"), per_class=per_class))
    md = paths["markdown"].read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;\\|x" in md
    rows = [line for line in md.splitlines() if "onerror" in line and line.startswith("|")]
    assert rows and all(len(line.replace("\\|", "").split("|")) == 5 for line in rows)  # the | is escaped: row name, two ratios
    assert tag not in paths["html"].read_text()
    per_class = {r["class"]: r for r in csv.DictReader(paths["per_class_csv"].open())}
    assert set(per_class) >= {tag, "'" + formula, "'@SUM(A1)"}
    cells = list(csv.DictReader(paths["cells_csv"].open()))
    assert any(r["method"] == f"{tag}|x" for r in cells)


# --------------------------------------------------------------------------------------------
# label noise and transfer
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0.0, 0.1, 0.25, 0.333])
def test_label_noise_flips_exactly_the_share_to_other_classes(rate):
    labels = np.random.default_rng(5).integers(0, 7, size=1001)
    noisy, flipped = flip_labels(labels, rate, 7, seed=3)
    assert len(flipped) == round(rate * 1001) == int((noisy != labels).sum())
    assert np.array_equal(np.flatnonzero(noisy != labels), flipped)  # every flipped label changed class
    assert noisy.min() >= 0 and noisy.max() < 7
    again, _ = flip_labels(labels, rate, 7, seed=3)
    assert np.array_equal(noisy, again)  # the seed is the record
    if rate:
        assert not np.array_equal(noisy, flip_labels(labels, rate, 7, seed=4)[0])


def test_noisy_dataset_is_a_new_dataset(digits):
    noisy, flipped = with_label_noise(digits, 0.2, seed=0)
    assert noisy.name == "digits+noise0.2" and noisy.fingerprint != digits.fingerprint
    assert len(flipped) == round(0.2 * len(digits))
    assert np.array_equal(noisy.test.label_array, digits.test.label_array)  # the test split stays clean


def test_noise_and_transfer_cells(tmp_path):
    config = tiny_grid(methods=["random"], ratios=[0.5], seeds=[0], models=[{"name": "resnet18", "width": 4}], proxy=None,
                       label_noise=[0.0, 0.2], analysis=False,
                       transfer={"data": "digits", "limit": 200, "recipe": {"base": "cpu-tiny", "epochs": 1, "batch_size": 32}})
    summary = run_bench(config, tmp_path, progress=False)
    cells = list(_cells(tmp_path).values())
    kinds = sorted(c["kind"] for c in cells)
    # per noise level: full + eval and their transfers; one scratch reference
    assert kinds == ["eval", "eval", "full", "full", "scratch", "transfer", "transfer", "transfer", "transfer"]
    assert summary.computed == 9
    noisy = [c for c in cells if c["noise"]["rate"] == 0.2 and c["kind"] == "eval"][0]
    assert noisy["noise"] == {"rate": 0.2, "seed": 0, "flipped": 60}
    assert 0 <= noisy["selection"]["flipped_kept"] <= 150
    stored = np.load(tmp_path / "noise" / "noise0.2-seed0.npz")
    assert len(stored["flipped"]) == 60
    transfer = [c for c in cells if c["kind"] == "transfer"]
    assert all(c["data"]["n_train"] == 200 and "classifier.weight" in c["reinitialised"] for c in transfer)
    assert all(c["reinitialised"] == ["classifier.bias", "classifier.weight"] for c in transfer)
    page = write_report(tmp_path)["html"].read_text()
    assert "Label noise: 20 % of training labels flipped (seed 0)" in page and "Transfer" in page
    assert re.search(r"flipped labels among the kept samples", page)
    # the transfer table's paired difference, by hand: clean transfer cells of random and a second method
    # on three seeds, written as the grid writes them
    clean = next(c for c in transfer if c["noise"]["rate"] == 0.0 and c["method"] == "random")
    fine_tuned = {"random": [70.0, 75.0, 80.0], "herding": [72.0, 74.5, 84.0]}
    for method, values in fine_tuned.items():
        for seed, top1 in enumerate(values):
            key, label = f"{method}{seed}00000000000"[:16], f"transfer-{method}-r0.50-s{seed}-resnet18w4"
            if (method, seed) == ("random", 0):  # the grid's own cell, rewritten
                key, label = clean["key"], clean["label"]
            cell = dict(clean, method=method, seed=seed, top1=top1, key=key, label=label)
            (tmp_path / "cells" / f"{cell['label']}-{key}.json").write_text(json.dumps(cell))
    report = write_report(tmp_path)["markdown"].read_text()
    assert "Fine-tuning recipe: 1 epochs, batch 32, lr" in report
    differences = np.subtract(fine_tuned["herding"], fine_tuned["random"])  # +2, -0.5, +4
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    expected = f"| herding | {differences.mean():+.2f} [{differences.mean() - half:+.2f}, {differences.mean() + half:+.2f}] |"
    section = report.split("fine-tuned test top-1 minus random (points), mean \\[95 % CI\\], paired over seeds: resnet18 w4")[1]
    assert expected in section.split("\n#")[0], section[:600]


def test_cell_keys_hash_the_parameters_with_their_defaults(digits):
    """A grid that spells out a default and one that leaves it out are the same cells; a changed value
    (or a changed default) is a new cell, never a stale stored one."""
    from rlselector.bench.plan import plan_cells

    def keys(method_params):
        config = tiny_grid(methods=["el2n"], ratios=[0.5], seeds=[0], models=[{"name": "resnet18", "width": 4}],
                           analysis=False, method_params=method_params)
        return [c.key for c in plan_cells(config, digits.limit(300, seed=0).fingerprint)]

    implicit, explicit = keys({}), keys({"el2n": {"policy": "keep-highest"}})
    assert implicit == explicit
    changed = keys({"el2n": {"policy": "keep-lowest"}})
    assert changed[0] == implicit[0] and changed[1] != implicit[1]  # the full-data cell is shared, the eval cell is not


def test_recalibrated_batch_norm_makes_new_training_cells_and_keeps_the_old_keys(digits):
    from rlselector.bench.plan import plan_cells

    def cells(recipe):
        config = tiny_grid(methods=["el2n"], ratios=[0.5], seeds=[0], models=[{"name": "resnet18", "width": 4}],
                           analysis=False, recipe=recipe)
        return plan_cells(config, digits.limit(300, seed=0).fingerprint)

    plain, recalibrated = cells(TINY_RECIPE), cells({**TINY_RECIPE, "recalibrate_bn": True})
    assert all(a.key != b.key for a, b in zip(plain, recalibrated))  # the full-data and the eval cell both train anew
    assert "recalibrate_bn" not in plain[0].spec["train"] and recalibrated[0].spec["train"]["recalibrate_bn"] is True
    # the full-data cell's key as computed before the setting existed (2026-12-02): a grid without it keeps its cells
    assert plain[0].kind == "full" and plain[0].key == "a72ccc16a2c9199d"
    assert plain[1].spec["selection"] == recalibrated[1].spec["selection"]  # the selection is the same one


def test_mixed_precision_is_part_of_the_cells_identity_and_the_device_is_not(digits):
    from rlselector.bench.plan import plan_cells

    def keys(runtime):
        config = tiny_grid(methods=["el2n"], ratios=[0.5], seeds=[0], models=[{"name": "resnet18", "width": 4}],
                           analysis=False, runtime=runtime)
        return [c.key for c in plan_cells(config, digits.limit(300, seed=0).fingerprint)]

    fp32 = keys({})
    assert keys({"device": "cpu", "amp": "off", "workers": 0}) == fp32  # where it trains changes no cell
    bf16 = keys({"amp": "bf16"})
    assert all(a != b for a, b in zip(fp32, bf16))  # the full-data and the eval cell both train anew


def test_bench_trains_every_network_with_the_grids_runtime(tmp_path, monkeypatch):
    """The runtime reaches the selection (its proxy) and every evaluation training, and the cell records it."""
    from rlselector.bench import execute

    seen: dict[str, list] = {"select": [], "train": []}
    real_select, real_train = execute.select, execute.train
    monkeypatch.setattr(execute, "select", lambda *a, **k: seen["select"].append(k) or real_select(*a, **k))
    monkeypatch.setattr(execute, "train", lambda *a, **k: seen["train"].append(k) or real_train(*a, **k))
    runtime = {"device": "cpu", "amp": "bf16"}
    config = tiny_grid(methods=["el2n"], ratios=[0.5], seeds=[0], models=[{"name": "resnet18", "width": 4}], analysis=False,
                       runtime=runtime, method_params={"el2n": {"seeds": 1}})
    run_bench(config, tmp_path / "out", progress=False)
    assert [{k: call[k] for k in runtime} for call in seen["select"]] == [runtime]
    assert [{k: call[k] for k in runtime} for call in seen["train"]] == [runtime, runtime]  # full data, then the subset
    records = [json.loads(p.read_text()) for p in (tmp_path / "out" / "cells").glob("*.json")]
    assert len(records) == 2 and all(r["runtime"] == runtime for r in records)
    manifest = json.loads(next((tmp_path / "out").rglob("selection.json")).read_text())
    assert manifest["runtime"]["amp"] == "bf16"


def test_test_split_limit_is_stratified_and_seeded(digits):
    from rlselector.bench.data import limit_test

    small = limit_test(digits, 100, seed=0)
    assert len(small.test) == 100 and len(small) == len(digits) and small.fingerprint == digits.fingerprint
    assert np.bincount(small.test.label_array, minlength=10).min() >= 9  # every class, in proportion
    assert np.array_equal(small.test.label_array, limit_test(digits, 100, seed=0).test.label_array)
    assert limit_test(digits, 10_000, seed=0) is digits


@pytest.mark.parametrize("grid", sorted((Path(__file__).parent.parent / "benchmarks" / "grids").glob("*.yaml")), ids=lambda p: p.name)
def test_recorded_grid_files_still_load(grid):
    """The grid files BENCHMARKS.md cites are valid against today's schema and method registry."""
    config = load_bench_config(path=grid)
    assert config.data == "fashion-mnist" and config.limit in (4000, 8000) and config.seeds  # cpu-cross-arch: 4,000
