"""The csv: source: a list 'path,label[,split]' of image files relative to the CSV's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import raises_naming
from PIL import Image

from rlselector.data import load_dataset
from rlselector.data.csv_list import load_csv

RNG = np.random.default_rng(0)


def write_images(root: Path, count: int = 6, shape=(12, 20, 3)) -> dict[str, np.ndarray]:
    """PNGs img/<k>.png of the given (non-square by default) shape; returns each path's pixels."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    written = {}
    for k in range(count):
        pixels = RNG.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img" / f"{k}.png")
        written[f"img/{k}.png"] = pixels
    return written


def write_csv(root: Path, text: str) -> Path:
    path = root / "list.csv"
    path.write_text(text)
    return path


GOOD = "path,label,split\nimg/0.png,owl,train\nimg/1.png,cat,train\nimg/2.png,owl,train\nimg/3.png,cat,train\nimg/4.png,cat,test\n"


def test_a_good_list_loads_with_sorted_classes_a_test_split_and_path_ids(tmp_path):
    written = write_images(tmp_path)
    path = write_csv(tmp_path, GOOD)
    dataset = load_dataset(f"csv:{path}")
    assert dataset.name == "csv:list.csv" and dataset.classes == ("cat", "owl")
    assert dataset.train.labels.tolist() == [1, 0, 1, 0] and dataset.test.labels.tolist() == [0]
    assert dataset.image_shape == (12, 20) and dataset.image_size == 12
    assert np.array_equal(dataset.train.images[1].numpy(), written["img/1.png"].transpose(2, 0, 1))
    assert dataset.sample_ids.tolist() == ["img/0.png", "img/1.png", "img/2.png", "img/3.png"]
    assert load_csv(str(path)).fingerprint == dataset.fingerprint
    # Without a split column every line is a training image; ?size=N resizes.
    plain_csv = write_csv(tmp_path, "path,label\nimg/0.png,a\nimg/1.png,b\n")
    plain = load_csv(f"{plain_csv}?size=5")
    assert plain.test is None and plain.train.images.shape == (2, 3, 5, 5)


def test_ids_survive_limit(tmp_path):
    write_images(tmp_path, count=6)
    path = write_csv(tmp_path, "path,label\n" + "".join(f"img/{k}.png,{'ab'[k % 2]}\n" for k in range(6)))
    parent = load_csv(str(path))
    limited = load_dataset(f"csv:{path}", limit=4, seed=2)
    assert len(limited) == 4
    assert np.array_equal(limited.sample_ids, parent.sample_ids[limited.parent_indices])


@pytest.mark.parametrize(
    ("text", "culprit", "match"),
    [
        (GOOD + "img/5.png,owl,train,extra\n", "list.csv, line 7", "4 fields, but the header names 3"),
        (GOOD.replace("img/2.png,owl", "img/2.png,"), "line 4, field 'label'", "empty"),
        (GOOD.replace("img/2.png", "img/9.png"), "line 4, field 'path'", "does not exist"),
        (GOOD.replace("path,label,split", "path,label,colour"), "line 1", "column 'colour' is unknown"),
        (GOOD.replace("path,label,split", "path,class,split"), "line 1", "column 'class' is unknown"),
        ("path\nimg/0.png\n", "line 1", "no 'label' column"),
        (GOOD.replace("cat,test", "cat,val"), "line 6, field 'split'", "neither train nor test"),
        (GOOD.replace("img/4.png,cat,test", "img/4.png,emu,test"), "line 6, field 'label'", "no training sample has this class"),
        (GOOD + "img/0.png,cat,test\n", "line 7, field 'path'", "listed already on line 2"),
        ("", "list.csv", "empty"),
        ("path,label,split\nimg/0.png,owl,test\n", "list.csv", "no training images"),
    ],
)
def test_bad_lists_are_refused_by_line_and_field(tmp_path, text, culprit, match):
    write_images(tmp_path)
    with raises_naming(culprit, match):
        load_csv(str(write_csv(tmp_path, text)))


def test_bad_images_name_the_line(tmp_path):
    write_images(tmp_path)
    (tmp_path / "img" / "3.png").write_bytes(b"not a png")
    with raises_naming("line 5, field 'path' (img/3.png)", "cannot decode"):
        load_csv(str(write_csv(tmp_path, GOOD)))
    write_images(tmp_path)
    Image.new("RGB", (7, 7)).save(tmp_path / "img" / "2.png")
    with raises_naming("line 4", r"7x7 but .*line 2.* is 20x12.*\?size=N"):
        load_csv(str(write_csv(tmp_path, GOOD)))


def test_a_missing_csv_is_named(tmp_path):
    with raises_naming(str(tmp_path / "nowhere.csv"), "no such file"):
        load_dataset(f"csv:{tmp_path / 'nowhere.csv'}")
    with raises_naming("csv", "needs a path"):
        load_dataset("csv")
