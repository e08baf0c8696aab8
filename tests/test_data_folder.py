"""The image-folder and Tiny-ImageNet sources read tiny trees of real image files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_helpers import raises_naming, truncate
from PIL import Image

from rlselector.data import load_dataset
from rlselector.data.folder import load_folder, load_tiny_imagenet

BLACK = np.zeros((8, 8, 3), np.uint8)


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_folder(root: Path, per_class: int = 3, test: bool = True) -> dict[Path, np.ndarray]:
    """A tree of 8x8 RGB PNGs; returns every file's pixels, to compare with what is read back."""
    rng = np.random.default_rng(0)
    written = {}
    for split, count in (("train", per_class), ("test", 1)) if test else (("train", per_class),):
        for name in ("cat", "dog", "owl"):
            for k in range(count):
                pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
                path = root / split / name / f"{k}.png"
                write_png(path, pixels)
                written[path] = pixels
    return written


WNIDS = ["n01443537", "n02012849", "n03126707"]
# Two wnids share the word 'crane', as in ImageNet; words.txt lists more wnids than the set uses.
WORDS = {
    "n01443537": "goldfish, Carassius auratus", "n02012849": "crane", "n03126707": "crane", "n09999999": "unused",
}


def write_tiny_imagenet(root: Path, per_class: int = 3) -> Path:
    directory = root / "tiny-imagenet-200"
    rng = np.random.default_rng(1)

    def jpeg(path: Path, channels: int = 3) -> None:
        shape = (64, 64, channels) if channels == 3 else (64, 64)
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)

    (directory / "val" / "images").mkdir(parents=True)
    (directory / "wnids.txt").write_text("\n".join(WNIDS) + "\n")
    (directory / "words.txt").write_text("".join(f"{wnid}\t{words}\n" for wnid, words in WORDS.items()))
    for wnid in WNIDS:
        images = directory / "train" / wnid / "images"
        images.mkdir(parents=True)
        (directory / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for k in range(per_class):
            jpeg(images / f"{wnid}_{k}.JPEG")
    # One greyscale JPEG, as in the real set.
    jpeg(directory / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG", channels=1)
    lines = []
    for k, wnid in enumerate([WNIDS[2], WNIDS[0], WNIDS[1]]):
        jpeg(directory / "val" / "images" / f"val_{k}.JPEG")
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63\n")
    (directory / "val" / "val_annotations.txt").write_text("".join(lines))
    return directory


def decoded_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).transpose(2, 0, 1)


# --- image folder -------------------------------------------------------------------------------------
def test_folder_round_trips_png_pixels_and_sorted_classes(tmp_path):
    written = write_folder(tmp_path / "pets")
    (tmp_path / "pets" / "train" / "cat" / ".DS_Store").write_bytes(b"\0junk")  # hidden: ignored
    dataset = load_dataset(f"folder:{tmp_path / 'pets'}")
    assert dataset.name == "folder:pets" and dataset.hflip
    assert dataset.classes == ("cat", "dog", "owl")
    assert dataset.train.images.shape == (9, 3, 8, 8) and dataset.test.images.shape == (3, 3, 8, 8)
    assert dataset.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dataset.test.labels.tolist() == [0, 1, 2]
    train_paths = sorted(path for path in written if "train" in path.parts)
    for image, path in zip(dataset.train.images, train_paths):
        assert np.array_equal(image.numpy(), written[path].transpose(2, 0, 1))
    assert load_folder(str(tmp_path / "pets")).fingerprint == dataset.fingerprint


def test_folder_fingerprint_changes_with_a_label(tmp_path):
    write_folder(tmp_path / "a", test=False)
    write_folder(tmp_path / "b", test=False)
    assert load_folder(str(tmp_path / "a")).fingerprint == load_folder(str(tmp_path / "b")).fingerprint
    (tmp_path / "b" / "train" / "dog" / "0.png").rename(tmp_path / "b" / "train" / "cat" / "9.png")
    assert load_folder(str(tmp_path / "a")).fingerprint != load_folder(str(tmp_path / "b")).fingerprint


def test_folder_test_split_may_hold_a_subset_of_classes(tmp_path):
    write_folder(tmp_path, test=False)
    write_png(tmp_path / "test" / "dog" / "a.png", BLACK)
    dataset = load_folder(str(tmp_path))
    assert dataset.test.labels.tolist() == [1] and dataset.test.images.shape == (1, 3, 8, 8)


def test_folder_greyscale_images_give_one_channel_unless_any_is_colour(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    for name in ("a", "b"):
        write_png(tmp_path / "train" / name / "0.png", grey)
    dataset = load_folder(str(tmp_path))
    assert dataset.in_channels == 1 and np.array_equal(dataset.train.images[0, 0].numpy(), grey)
    jpeg = tmp_path / "train" / "b" / "1.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(jpeg)
    dataset = load_folder(str(tmp_path))
    assert dataset.in_channels == 3
    assert all(np.array_equal(dataset.train.images[0, c].numpy(), grey) for c in range(3))
    assert np.array_equal(dataset.train.images[2].numpy(), decoded_rgb(jpeg))


def test_folder_size_option_resizes_every_image(tmp_path):
    write_folder(tmp_path, test=False)
    write_png(tmp_path / "train" / "cat" / "big.png", np.zeros((12, 16, 3), np.uint8))
    with raises_naming("big.png", "16x12 but .* is 8x8"):
        load_folder(str(tmp_path))
    dataset = load_dataset(f"folder:{tmp_path}?size=6")
    assert dataset.train.images.shape == (10, 3, 6, 6)
    with raises_naming("size=N", "unknown option"):
        load_folder(f"{tmp_path}?size=big")


@pytest.mark.parametrize(
    ("damage", "culprit", "match"),
    [
        (lambda root: (root / "train/dog/2.png").write_bytes(b"not a png at all"), "2.png", "cannot decode"),
        (lambda root: truncate(root / "train/dog/2.png", 60), "2.png", "truncated"),
        (lambda root: [path.unlink() for path in (root / "train/owl").iterdir()], "owl", "holds no images"),
        (lambda root: write_png(root / "test/bat/0.png", BLACK), "bat", "subset of the train"),
        (lambda root: (root / "train/stray.png").write_bytes(b""), "stray.png", "move it into a class folder"),
        (lambda root: write_png(root / "train/cat/deep/0.png", BLACK), "deep", "sub-folder"),
        (lambda root: write_png(root / "train/cat/16bit.png", np.zeros((8, 8), np.uint16)), "16bit.png", "8-bit"),
    ],
)
def test_folder_refuses_bad_files_by_name(tmp_path, damage, culprit, match):
    write_folder(tmp_path)
    damage(tmp_path)
    with raises_naming(culprit, match):
        load_folder(str(tmp_path))


def test_folder_refuses_missing_directories(tmp_path):
    with raises_naming(str(tmp_path / "nowhere"), "no such file or directory"):
        load_folder(str(tmp_path / "nowhere"))
    with raises_naming(str(tmp_path / "train"), "root/train/<class>"):
        load_folder(str(tmp_path))


# --- Tiny-ImageNet ------------------------------------------------------------------------------------
def test_tiny_imagenet_reads_train_and_val(tmp_path):
    directory = write_tiny_imagenet(tmp_path)
    dataset = load_dataset(f"tiny-imagenet:{tmp_path}")
    assert dataset.name == "tiny-imagenet" and dataset.hflip
    assert dataset.classes == ("goldfish", "crane (n02012849)", "crane (n03126707)")
    assert dataset.train.images.shape == (9, 3, 64, 64) and dataset.test.images.shape == (3, 3, 64, 64)
    assert dataset.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dataset.test.labels.tolist() == [2, 0, 1]  # the order of val_annotations.txt
    first = directory / "train" / WNIDS[0] / "images" / f"{WNIDS[0]}_0.JPEG"  # the greyscale one
    assert np.array_equal(dataset.train.images[0].numpy(), decoded_rgb(first))
    assert np.array_equal(dataset.test.images[1].numpy(), decoded_rgb(directory / "val" / "images" / "val_1.JPEG"))
    (directory / "words.txt").unlink()
    assert load_tiny_imagenet(str(directory)).classes == tuple(WNIDS)


@pytest.mark.parametrize(
    ("damage", "culprit", "match"),
    [
        (lambda d: Image.new("RGB", (64, 64)).save(d / "val/images/val_9.JPEG"), "val_9.JPEG", "not listed"),
        (lambda d: (d / "val/images/val_0.JPEG").unlink(), "val_0.JPEG", "missing"),
        (
            lambda d: (d / "val/val_annotations.txt").write_text("val_0.JPEG\tn00000000\t0\t0\t1\t1\n"),
            "val_annotations.txt, line 1",
            "not in wnids",
        ),
        (lambda d: Image.new("RGB", (32, 32)).save(d / f"train/{WNIDS[1]}/images/x.JPEG"), "x.JPEG", "32x32 .* 64x64"),
        (lambda d: truncate(d / f"train/{WNIDS[2]}/images/{WNIDS[2]}_1.JPEG", 3), f"{WNIDS[2]}_1", "cannot decode"),
        (lambda d: (d / "train/n07777777").mkdir(), "n07777777", "not in wnids.txt"),
    ],
)
def test_tiny_imagenet_refuses_bad_files_by_name(tmp_path, damage, culprit, match):
    directory = write_tiny_imagenet(tmp_path)
    damage(directory)
    with raises_naming(culprit, match):
        load_tiny_imagenet(str(directory))


def test_tiny_imagenet_refuses_a_missing_directory(tmp_path):
    with raises_naming("wnids.txt", "tiny-imagenet-200"):
        load_tiny_imagenet(str(tmp_path))
