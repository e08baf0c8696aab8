"""The kept set in other libraries' terms: sample IDs and parent indices that survive --limit, torch
subsets and samplers, Hugging Face rows, a CSV export, and DataLoader over a selection's subset."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

from rlselector import load_dataset, load_selection, select
from rlselector.cli import app
from rlselector.errors import InputError


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny image folder: 3 classes × 8 PNGs, named so their paths are their IDs."""
    root = tmp_path_factory.mktemp("folder")
    rng = np.random.default_rng(0)
    for name in ("cat", "dog", "owl"):
        (root / "train" / name).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / "train" / name / f"{name}{i}.png")
    return root


def test_ids_and_parent_indices_survive_limit_and_a_round_trip(folder, tmp_path):
    full = load_dataset(f"folder:{folder}")
    limited = load_dataset(f"folder:{folder}", limit=15, seed=3)
    sel = select(limited, "random", 0.4, 0, out=tmp_path / "sel", progress=False)
    again = load_selection(tmp_path / "sel")
    for kept in (sel, again):
        assert len(kept.sample_ids) == len(kept.indices) == 6
        np.testing.assert_array_equal(kept.sample_ids, limited.sample_ids[kept.indices])
        np.testing.assert_array_equal(kept.sample_ids, full.sample_ids[kept.parent_indices])  # back to the full dataset
        assert all(str(i).startswith("train/") and str(i).endswith(".png") for i in kept.sample_ids)
    assert torch.equal(full.train.images[torch.as_tensor(again.parent_indices)], limited.train.images[torch.as_tensor(again.indices)])


def test_a_selection_on_the_whole_set_has_no_parent_indices(tmp_path):
    sel = select(load_dataset("digits"), "random", 0.5, 0, out=tmp_path / "s", progress=False)
    assert sel.parent_indices is None and sel.sample_ids is None
    assert load_selection(tmp_path / "s").parent_indices is None


def test_torch_subset_sampler_and_dataloader():
    data = load_dataset("digits")
    sel = select(data, "random", 0.25, 1, progress=False)
    loader = DataLoader(sel.subset(data), batch_size=64)  # the rlselector subset is a map-style torch dataset
    seen = sum(len(labels) for _, labels in loader)
    assert seen == len(sel.indices)
    images, labels = next(iter(loader))
    assert images.dtype == torch.float32 and images.shape[1:] == (1, 8, 8)
    np.testing.assert_array_equal(labels.numpy(), data.train.label_array[sel.indices[:64]])

    own = TensorDataset(torch.arange(len(data)), torch.as_tensor(data.train.label_array))
    subset = sel.torch_subset(own)
    assert [int(subset[i][0]) for i in range(len(subset))] == sel.indices.tolist()
    drawn = list(sel.sampler(seed=5))
    assert sorted(drawn) == sel.indices.tolist() and drawn != sel.indices.tolist() and drawn == list(sel.sampler(seed=5))
    assert list(sel.sampler(shuffle=False)) == sel.indices.tolist()
    with pytest.raises(InputError, match="covers 1437 samples but the torch dataset given has 10"):
        sel.torch_subset(TensorDataset(torch.arange(10)))


def test_hf_select_keeps_the_rows():
    datasets = pytest.importorskip("datasets", reason="the rlselector[hf] extra is not installed")
    data = load_dataset("digits")
    sel = select(data, "random", 0.1, 2, progress=False)
    rows = datasets.Dataset.from_dict({"row": list(range(len(data)))})
    assert sel.hf_select(rows)["row"] == sel.indices.tolist()


def test_csv_export(folder, tmp_path):
    result = CliRunner().invoke(app, ["select", "--data", f"folder:{folder}", "--limit", "15", "--method", "random", "--ratio", "0.4",
                                      "--out", str(tmp_path / "sel"), "--export", "csv", "--quiet"])
    assert result.exit_code == 0, result.output
    sel = load_selection(tmp_path / "sel")
    with open(tmp_path / "sel" / "selection.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["index"]) for r in rows] == sel.indices.tolist()
    assert [r["sample_id"] for r in rows] == sel.sample_ids.tolist()
    assert [int(r["parent_index"]) for r in rows] == sel.parent_indices.tolist()
    assert [float(r["score"]) for r in rows] == sel.scores[sel.indices].tolist()
