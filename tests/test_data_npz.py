"""The npz source reads small archives written here with np.savez."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import raises_naming, truncate

from rlselector.data import load_dataset
from rlselector.data.npz import load_npz


# --- npz ----------------------------------------------------------------------------------------------
def npz_arrays(n: int = 30, layout: str = "nhwc") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shape = {"nhwc": (n, 8, 8, 3), "nchw": (n, 3, 8, 8), "nhw": (n, 8, 8)}[layout]
    return {"x": rng.integers(0, 256, shape, dtype=np.uint8), "y": np.arange(n) % 3}


def save_npz(path: Path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


@pytest.mark.parametrize(
    ("layout", "to_nchw"),
    [
        ("nhwc", lambda x: x.transpose(0, 3, 1, 2)),
        ("nchw", lambda x: x),
        ("nhw", lambda x: x[:, None]),
    ],
)
def test_npz_layouts_round_trip(tmp_path, layout, to_nchw):
    arrays = npz_arrays(layout=layout)
    dataset = load_dataset("npz:" + save_npz(tmp_path / "data.npz", **arrays))
    assert dataset.name == "npz:data.npz" and dataset.hflip and dataset.test is None
    assert np.array_equal(dataset.train.images.numpy(), to_nchw(arrays["x"]))
    assert dataset.train.labels.tolist() == arrays["y"].tolist() and dataset.classes == ("0", "1", "2")


def test_npz_with_test_split_classes_and_float_pixels(tmp_path):
    arrays = npz_arrays()
    floats = arrays["x"].astype(np.float32) / 255.0
    path = save_npz(
        tmp_path / "data.npz", x=floats, y=arrays["y"], x_test=arrays["x"][:4], y_test=np.array([2, 1, 0, 0]),
        classes=np.array(["red", "green", "blue"]),
    )
    dataset = load_npz(path)
    assert np.array_equal(dataset.train.images.numpy(), arrays["x"].transpose(0, 3, 1, 2))  # *255, rounded
    assert dataset.classes == ("red", "green", "blue") and dataset.test.labels.tolist() == [2, 1, 0, 0]
    same = load_npz(save_npz(tmp_path / "same.npz", **arrays))
    assert same.fingerprint == dataset.fingerprint
    arrays["y"][5] = (arrays["y"][5] + 1) % 3
    assert load_npz(save_npz(tmp_path / "changed.npz", **arrays)).fingerprint != same.fingerprint


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda a: a.update(y=a["y"][:29]), "fields 'x', 'y': 30 images but 29 labels"),
        (lambda a: a.update(classes=np.array(["a", "b"])), r"labels must lie in \[0, 2\).*'classes' \(2 names\)"),
        (lambda a: a.update(y=a["y"] - 1), r"labels must lie in \[0, 2\)"),
        (lambda a: a.update(y=a["y"] + 1), r"\['0'\] have no training samples"),
        (lambda a: a.update(y=a["y"].astype(float)), "field 'y': labels must be a 1-D array of integers"),
        (lambda a: a.pop("y"), "missing field 'y'"),
        (lambda a: a.update(X=a.pop("x")), r"unknown field\(s\) \['X'\]"),
        (lambda a: a.update(x_test=a["x"]), "field 'x_test' without 'y_test'"),
        (lambda a: a.update(x=a["x"] * 2.0), r"field 'x': float pixels must lie in \[0, 1\]"),
        (lambda a: a.update(x=a["x"][:, :, :, :2]), "field 'x': images of shape"),
        (lambda a: a.update(x_test=a["x"][:2, :4, :4], y_test=a["y"][:2]), "both splits must have one image shape"),
    ],
)
def test_npz_refuses_bad_fields_by_name(tmp_path, change, match):
    arrays = npz_arrays()
    change(arrays)
    with raises_naming("bad.npz", match):
        load_npz(save_npz(tmp_path / "bad.npz", **arrays))


def test_npz_refuses_missing_corrupt_and_npy_files(tmp_path):
    with raises_naming("missing.npz", "no such file"):
        load_npz(str(tmp_path / "missing.npz"))
    path = save_npz(tmp_path / "cut.npz", **npz_arrays())
    truncate(Path(path), 300)
    with raises_naming("cut.npz", "corrupt"):
        load_npz(path)
    np.save(tmp_path / "x.npy", np.zeros(3))
    with raises_naming("x.npy", "not an .npz archive"):
        load_npz(str(tmp_path / "x.npy"))
