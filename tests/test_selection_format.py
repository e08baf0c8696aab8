import json

import numpy as np
import pytest

from rlselector import load_dataset, load_selection, select
from rlselector.errors import InputError
from rlselector.selection import write_selection


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=200, seed=0)


def test_written_files_and_fields(small, tmp_path):
    sel = select(small, method="random", ratio=0.25, seed=4, out=tmp_path / "s", progress=False)
    manifest = json.loads((tmp_path / "s" / "selection.json").read_text())
    assert manifest["n"] == 200 and manifest["n_kept"] == 50
    assert manifest["ratio_requested"] == 0.25 and manifest["ratio_achieved"] == 0.25
    assert manifest["seed"] == 4 and manifest["method"] == "random"
    assert manifest["score_direction"] == "higher = keep"
    assert manifest["dataset"]["fingerprint"] == small.fingerprint
    assert set(manifest["timings"]) >= {"selection_s", "proxy_s"}
    with np.load(tmp_path / "s" / "selection.npz") as arrays:
        np.testing.assert_array_equal(arrays["indices"], sel.indices)
        assert arrays["scores"].shape == (200,)
    # atomic writes leave no temporary files behind
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["selection.json", "selection.npz"]


def test_load_and_subset(small, tmp_path):
    sel = select(small, method="random", ratio=0.5, seed=0, out=tmp_path, progress=False)
    loaded = load_selection(tmp_path)
    np.testing.assert_array_equal(loaded.indices, sel.indices)
    subset = loaded.subset(small)
    assert len(subset) == 100
    assert np.array_equal(subset.train.label_array, small.train.label_array[sel.indices])
    assert load_selection(tmp_path / "selection.json").manifest == loaded.manifest


def test_other_dataset_refused(small, tmp_path):
    select(small, method="random", ratio=0.5, seed=0, out=tmp_path, progress=False)
    other = load_dataset("digits", limit=200, seed=1)
    with pytest.raises(InputError, match="fingerprint"):
        load_selection(tmp_path).subset(other)


def test_missing_or_mismatched_files_refused(small, tmp_path):
    with pytest.raises(InputError, match="selection.json: missing"):
        load_selection(tmp_path)
    sel = select(small, method="random", ratio=0.5, seed=0, progress=False)
    write_selection(tmp_path, sel)
    manifest = json.loads((tmp_path / "selection.json").read_text())
    manifest["n_kept"] = 3
    (tmp_path / "selection.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="do not belong together"):
        load_selection(tmp_path)


def test_existing_selection_not_overwritten(small, tmp_path):
    select(small, method="random", ratio=0.5, seed=0, out=tmp_path, progress=False)
    with pytest.raises(InputError, match="--overwrite"):
        select(small, method="random", ratio=0.5, seed=0, out=tmp_path, progress=False)
    select(small, method="random", ratio=0.3, seed=0, out=tmp_path, progress=False, overwrite=True)
    assert load_selection(tmp_path).manifest["n_kept"] == 60


def test_unknown_method_lists_known(small):
    with pytest.raises(InputError, match="known methods:.*random"):
        select(small, method="nope", ratio=0.5, progress=False)
