"""Paired evaluation, the validation split and the report a reader trusts, on small real grids."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from rlselector.bench import config_from_dict, run_bench
from rlselector.bench.report import write_report
from rlselector.errors import InputError
from rlselector.selection import load_selection

TINY_RECIPE = {"base": "cpu-tiny", "epochs": 1, "batch_size": 32}
TINY_PROXY = {"width": 4, "epochs": 2, "batch_size": 64, "record_epochs": [1, 2]}


def _cells(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory):
    """Two methods, two ratios, two seeds, two evaluation models, a 10 % validation split."""
    out = tmp_path_factory.mktemp("paired") / "out"
    config = config_from_dict({
        "name": "paired", "data": "digits", "limit": 300, "methods": ["random", "el2n"], "ratios": [0.3, 0.6], "seeds": [0, 1],
        "models": [{"name": "resnet18", "width": 4}, {"name": "vgg16", "width": 4}], "recipe": TINY_RECIPE, "proxy": TINY_PROXY,
        "validation": 0.1, "analysis": False,
    })
    run_bench(config, out, progress=False)
    return out


def test_every_method_of_a_ratio_and_seed_trains_from_the_same_weights(paired_run):
    """Within a (ratio, seed, evaluation model) every method's subset (and the full data) starts from the same
    initial weights with the same evaluation seed; another seed starts elsewhere."""
    cells = _cells(paired_run)
    groups: dict[tuple, set] = defaultdict(set)
    for c in cells:
        assert c["eval_seed"] == c["seed"] == c["train"]["seed"]
        groups[(c["seed"], c["model"])].add((c["eval_seed"], c["init_digest"]))
    assert len(groups) == 4 and all(len(g) == 1 for g in groups.values()), groups
    digests = {key: next(iter(g))[1] for key, g in groups.items()}
    assert digests[(0, "resnet18")] != digests[(1, "resnet18")] and digests[(0, "resnet18")] != digests[(0, "vgg16")]
    methods = {(c["method"], c["ratio"]) for c in cells if c["seed"] == 0 and c["model"] == "resnet18"}
    assert len(methods) == 5  # 2 methods x 2 ratios + full data all in the one group


def test_validation_split_is_held_out_recorded_and_scored(paired_run):
    stored = np.load(paired_run / "validation" / "grid-0.1-seed0.npz")
    held, train = stored["validation"], stored["train"]
    assert len(held) == 30 and len(train) == 270 and not set(held) & set(train) and len(set(held) | set(train)) == 300
    grid = json.loads((paired_run / "grid.json").read_text())
    assert grid["validation"]["grid"] == {"fraction": 0.1, "seed": 0, "n": 30, "n_train": 270, "file": "validation/grid-0.1-seed0.npz"}
    for c in _cells(paired_run):
        assert c["validation"] == grid["validation"]["grid"]
        assert 0.0 <= c["val_top1"] <= c["val_top5"] <= 100.0
        assert c["data"]["n_train"] == 270
        if c["kind"] == "eval":  # the selection never saw the held-out samples: its indices are positions among the 270
            sel = load_selection(paired_run / c["selection"]["dir"])
            assert sel.manifest["n"] == 270 and c["n_train"] == round(c["ratio"] * 270)
            assert not set(train[sel.indices]) & set(held)
        else:
            assert c["n_train"] == 270
    # the validation accuracy is 30 samples' share: a multiple of 1/30
    assert all(abs(c["val_top1"] * 30 / 100 - round(c["val_top1"] * 30 / 100)) < 1e-6 for c in _cells(paired_run))


def test_report_of_either_split(paired_run):
    test_page = write_report(paired_run)["html"].read_text()
    paths = write_report(paired_run, split="validation")
    assert paths["html"].parent.name == "report-validation"
    page = paths["html"].read_text()
    assert "validation top-1 % by selection ratio" in page and "test top-1 % by selection ratio" not in page
    assert "hold-out of 10 % of the training set (30 samples, seed 0)" in page
    assert "test top-1 % by selection ratio" in test_page
    for expected in ("validation top-1 minus random (points), mean [95 % CI], paired over seeds",
                     "rank by mean validation top-1 [95 % paired-bootstrap range]"):
        assert expected in page
    with pytest.raises(InputError, match="--split 'train'"):
        write_report(paired_run, split="train")


def test_validation_report_needs_a_validation_split(tmp_path):
    config = config_from_dict({"name": "plain", "data": "digits", "limit": 200, "methods": ["random"], "ratios": [0.5],
                               "models": [{"name": "resnet18", "width": 4}], "recipe": TINY_RECIPE, "analysis": False})
    run_bench(config, tmp_path, progress=False)
    cell = _cells(tmp_path)[0]
    assert cell["val_top1"] is None and cell["validation"] is None and not (tmp_path / "validation").exists()
    with pytest.raises(InputError, match="no cell holds a validation accuracy; add 'validation: 0.1'"):
        write_report(tmp_path, split="validation")


def _without_images(page: str) -> str:
    return re.sub(r'src="data:image/png;base64,[^"]*"', 'src=""', page)


def test_one_seed_report_is_flagged_and_readable(tmp_path):
    """One seed of random, herding and RL-Selector with a t-SNE: the caveat wherever a rank is given, no NaN text
    (RL-Selector's first epoch records NaN reward terms), every figure present."""
    config = config_from_dict({
        "name": "one-seed", "data": "digits", "limit": 300, "methods": ["random", "herding", "rl-selector"], "ratios": [0.5],
        "seeds": [0], "models": [{"name": "resnet18", "width": 4}], "recipe": TINY_RECIPE, "proxy": TINY_PROXY,
        "method_params": {"rl-selector": {"recipe": "cpu-tiny", "epochs": 2}},
        "analysis": {"max_samples": 150, "tsne": {"method": "rl-selector", "ratio": 0.5, "samples": 120}},
    })
    run_bench(config, tmp_path, progress=False)
    diagnostics = next((tmp_path / "selections").glob("rl-selector-*")) / "diagnostics.jsonl"
    assert "NaN" in diagnostics.read_text()  # what the report must not print
    paths = write_report(tmp_path)
    page = paths["html"].read_text()
    text = _without_images(page)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    assert "One seed: no uncertainty: every entry is a single run (seed 0)" in text
    standing = re.search(r"rl-selector against the other methods[^<]*", text).group(0)
    assert re.search(r"rank \d of 3 \(one seed: no uncertainty\)", standing), standing
    assert "rank by mean test top-1 [95 % paired-bootstrap range] (one seed: no uncertainty)" in text
    assert "RL-Selector at its last epoch (– = not recorded)" in text and '{"epoch"' not in text
    figures = sorted(p.name for p in (paths["html"].parent / "figures").glob("*.png"))
    for kind in ("accuracy-", "cost-", "per-class-", "tsne-", "diag-rl-selector-epochs", "diagnostics"):
        assert any(kind in name for name in figures), (kind, figures)
    assert page.count("data:image/png;base64,") == len(figures)
    # the t-SNE picture carries a class legend: wider than the two square panels alone
    from PIL import Image

    tsne = next(p for p in (tmp_path / "analysis").glob("*.png"))
    width, height = Image.open(tsne).size
    assert width / height > 2.3
