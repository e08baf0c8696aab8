"""Image folders and Tiny-ImageNet: stray non-image files skipped with one warning, non-square
images, and sample IDs (paths relative to the root) that survive --limit."""

from __future__ import annotations

import logging

import numpy as np
from data_helpers import raises_naming
from test_data_folder import WNIDS, write_folder, write_png, write_tiny_imagenet

from rlselector.data import load_dataset
from rlselector.data.folder import load_folder, load_tiny_imagenet


def skip_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "not images" in r.getMessage()]


def test_folder_skips_non_image_files_with_one_warning_that_counts_them(tmp_path, caplog):
    write_folder(tmp_path)
    (tmp_path / "train" / "dog" / "notes.txt").write_text("hi")
    (tmp_path / "train" / "README.md").write_text("about")
    (tmp_path / "test" / "cat" / "labels.csv").write_text("x")
    with caplog.at_level(logging.WARNING):
        dataset = load_folder(str(tmp_path))
    assert len(dataset) == 9 and len(dataset.test) == 3 and dataset.classes == ("cat", "dog", "owl")
    (warning,) = skip_warnings(caplog)
    assert "skipped 3 file(s)" in warning and "train/dog/notes.txt" in warning
    # An image file among the class folders is still refused: it was meant to be data.
    write_png(tmp_path / "train" / "stray.png", np.zeros((8, 8, 3), np.uint8))
    with raises_naming("stray.png", "move it into a class folder"):
        load_folder(str(tmp_path))


def test_tiny_imagenet_skips_non_image_files(tmp_path, caplog):
    directory = write_tiny_imagenet(tmp_path)
    (directory / "train" / WNIDS[1] / "images" / "notes.txt").write_text("hi")
    (directory / "val" / "images" / "Thumbs.db").write_bytes(b"\0")
    with caplog.at_level(logging.WARNING):
        dataset = load_tiny_imagenet(str(directory))
    assert len(dataset) == 9 and len(dataset.test) == 3
    (warning,) = skip_warnings(caplog)
    assert "skipped 2 file(s)" in warning
    assert dataset.sample_ids[0] == f"train/{WNIDS[0]}/images/{WNIDS[0]}_0.JPEG"


def test_folder_reads_non_square_images(tmp_path):
    rng = np.random.default_rng(0)
    written = {}
    for name in ("cat", "dog"):
        for k in range(2):
            written[name, k] = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
            write_png(tmp_path / "train" / name / f"{k}.png", written[name, k])
    dataset = load_folder(str(tmp_path))
    assert dataset.train.images.shape == (4, 3, 12, 20)
    assert dataset.image_shape == (12, 20) and dataset.image_size == 12
    assert np.array_equal(dataset.train.images[2].numpy(), written["dog", 0].transpose(2, 0, 1))


def test_folder_sample_ids_are_relative_paths_that_survive_limit(tmp_path):
    write_folder(tmp_path, per_class=4)
    parent = load_folder(str(tmp_path))
    assert parent.sample_ids.tolist()[:2] == ["train/cat/0.png", "train/cat/1.png"]
    limited = load_dataset(f"folder:{tmp_path}", limit=6, seed=0)
    assert len(limited) == 6 and limited.fingerprint != parent.fingerprint
    assert np.array_equal(limited.sample_ids, parent.sample_ids[limited.parent_indices])
    nested = limited.subset([1, 4])
    assert np.array_equal(nested.sample_ids, parent.sample_ids[nested.parent_indices])
