"""User data sources read tiny files written here in the exact on-disk formats of the real datasets."""

from __future__ import annotations

import os
import pickle
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rlselector.data import load_dataset
from rlselector.data.user import load_cifar10, load_cifar100, load_folder, load_npz, load_tiny_imagenet
from rlselector.errors import InputError

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# --- writers --------------------------------------------------------------------------------------
def write_pickle(path: Path, record: dict) -> None:
    """Pickle as the official files do: protocol 2, numpy 1's module names (numpy.core.multiarray)."""
    raw = pickle.dumps(record, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(raw)


def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, per_batch: int = 10) -> Path:
    """Five training batches of ``per_batch`` images (every class in every batch) and a test batch."""
    directory = root / "cifar-10-batches-py"
    directory.mkdir(parents=True)
    names = [name.encode() for name in CIFAR10_NAMES]
    write_pickle(directory / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    for i in range(1, 6):
        labels = [(i + k) % 10 for k in range(per_batch)]
        record = {b"batch_label": b"training batch", b"labels": labels, b"data": cifar_rows(per_batch, i)}
        write_pickle(directory / f"data_batch_{i}", record)
    write_pickle(directory / "test_batch", {b"labels": list(range(10)), b"data": cifar_rows(10, 99)})
    return directory


def batch(directory: Path, name: str) -> dict:
    with open(directory / name, "rb") as handle:
        return pickle.load(handle, encoding="bytes")


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


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def decoded_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).transpose(2, 0, 1)


@contextmanager
def raises_naming(text: str, match: str = ""):
    """An InputError whose message names ``text`` (usually the culprit file) and matches ``match``."""
    with pytest.raises(InputError, match=match) as info:
        yield info
    assert text in str(info.value), f"{text!r} not named in: {info.value}"


# --- CIFAR-10 / CIFAR-100 -----------------------------------------------------------------------------
def test_cifar10_round_trips_pixels_labels_and_names(tmp_path):
    directory = write_cifar10(tmp_path)
    rows = batch(directory, "data_batch_1")[b"data"]
    rows[0] = np.concatenate([np.full(1024, 255), np.zeros(1024), np.arange(1024) % 256]).astype(np.uint8)
    write_pickle(directory / "data_batch_1", {b"labels": batch(directory, "data_batch_1")[b"labels"], b"data": rows})

    dataset = load_cifar10(str(tmp_path))  # the parent of cifar-10-batches-py works too
    assert dataset.name == "cifar10" and dataset.hflip
    assert dataset.classes == tuple(CIFAR10_NAMES)
    assert dataset.train.images.shape == (50, 3, 32, 32) and dataset.train.images.dtype == torch.uint8
    first = dataset.train.images[0].numpy()
    assert (first[0] == 255).all() and (first[1] == 0).all()  # red plane first, then green, then blue
    assert np.array_equal(first[2].ravel(), np.arange(1024) % 256)  # row-major 32x32 plane
    expected = np.concatenate([batch(directory, f"data_batch_{i}")[b"data"] for i in range(1, 6)])
    assert np.array_equal(dataset.train.images.numpy().reshape(50, 3072), expected)
    labels = [label for i in range(1, 6) for label in batch(directory, f"data_batch_{i}")[b"labels"]]
    assert dataset.train.labels.tolist() == labels
    assert dataset.test.labels.tolist() == list(range(10))
    assert np.array_equal(dataset.test.images.numpy().reshape(10, 3072), cifar_rows(10, 99))
    assert load_cifar10(str(directory)).fingerprint == dataset.fingerprint


def test_cifar_fingerprint_follows_content_not_path(tmp_path):
    same = load_cifar10(str(write_cifar10(tmp_path / "a")))
    assert load_cifar10(str(write_cifar10(tmp_path / "b"))).fingerprint == same.fingerprint
    directory = write_cifar10(tmp_path / "c")
    record = batch(directory, "data_batch_2")
    record[b"labels"][0] = (record[b"labels"][0] + 1) % 10
    write_pickle(directory / "data_batch_2", record)
    assert load_cifar10(str(directory)).fingerprint != same.fingerprint


def test_cifar100_reads_fine_labels(tmp_path):
    directory = tmp_path / "cifar-100-python"
    directory.mkdir()
    names = [f"class{k:02d}" for k in range(100)]
    meta = {b"fine_label_names": [name.encode() for name in names], b"coarse_label_names": [b"c"] * 20}
    write_pickle(directory / "meta", meta)
    fine = [(7 * k) % 100 for k in range(100)]
    coarse = [k % 20 for k in range(100)]
    write_pickle(directory / "train", {b"fine_labels": fine, b"coarse_labels": coarse, b"data": cifar_rows(100, 1)})
    write_pickle(directory / "test", {b"fine_labels": [3, 5], b"coarse_labels": [0, 1], b"data": cifar_rows(2, 2)})
    dataset = load_cifar100(str(directory))
    assert dataset.name == "cifar100" and dataset.classes == tuple(names)
    assert dataset.train.labels.tolist() == fine and dataset.test.labels.tolist() == [3, 5]
    assert np.array_equal(dataset.train.images[5].numpy().ravel(), cifar_rows(100, 1)[5])


def test_load_dataset_cifar10_limit_is_class_stratified(tmp_path):
    directory = write_cifar10(tmp_path)
    subset = load_dataset(f"cifar10:{directory}", limit=20, seed=3)
    assert len(subset) == 20 and subset.class_counts.tolist() == [2] * 10
    again = load_dataset(f"cifar10:{directory}", limit=20, seed=3)
    assert np.array_equal(subset.parent_indices, again.parent_indices)
    full = load_dataset(f"cifar10:{directory}")
    assert torch.equal(subset.train.images, full.train.images[torch.from_numpy(subset.parent_indices)])


def test_cifar_refuses_a_truncated_batch_by_name(tmp_path):
    directory = write_cifar10(tmp_path)
    truncate(directory / "data_batch_3", 20_000)
    with raises_naming("data_batch_3", "pickle data was truncated"):
        load_cifar10(str(directory))


def test_cifar_refuses_a_pickle_that_would_run_code(tmp_path):
    directory = write_cifar10(tmp_path)

    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (directory / "test_batch").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with raises_naming("test_batch", "system"):
        load_cifar10(str(directory))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda record: record[b"labels"].append(0), "10 images but 11 labels"),
        (lambda record: record[b"labels"].__setitem__(0, 10), r"labels must lie in \[0, 10\)"),
        (lambda record: record.pop(b"data"), "no field 'data'"),
        (lambda record: record.__setitem__(b"data", record[b"data"][:, :1024]), "rows of 3072 pixels"),
    ],
)
def test_cifar_refuses_a_bad_batch_by_name(tmp_path, change, match):
    directory = write_cifar10(tmp_path)
    record = batch(directory, "data_batch_4")
    change(record)
    write_pickle(directory / "data_batch_4", record)
    with raises_naming("data_batch_4", match):
        load_cifar10(str(directory))


def test_cifar_refuses_missing_files_and_directories(tmp_path):
    with raises_naming(str(tmp_path / "nowhere"), "no such file or directory"):
        load_cifar10(str(tmp_path / "nowhere"))
    with raises_naming("batches.meta", "cifar-10-batches-py"):
        load_cifar10(str(tmp_path))
    directory = write_cifar10(tmp_path)
    (directory / "data_batch_5").unlink()
    with raises_naming("data_batch_5", "missing"):
        load_cifar10(str(directory))


def test_cifar_refuses_a_class_without_training_samples(tmp_path):
    directory = write_cifar10(tmp_path)
    for i in range(1, 6):
        record = batch(directory, f"data_batch_{i}")
        record[b"labels"] = [label if label != 9 else 0 for label in record[b"labels"]]
        write_pickle(directory / f"data_batch_{i}", record)
    with raises_naming("truck", "no training samples"):
        load_cifar10(str(directory))


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
        (lambda root: (root / "train/dog/notes.txt").write_text("hi"), "notes.txt", "not an image file"),
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
