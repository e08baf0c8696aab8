"""The CIFAR-10/100 sources read tiny batch files written here in the official pickle format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from data_helpers import EACH_CODE_PAYLOAD, RunsCode, raises_naming, truncate

from rlselector.data import load_dataset
from rlselector.data.cifar import load_cifar10, load_cifar100

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


@EACH_CODE_PAYLOAD
def test_cifar_refuses_a_pickle_that_would_run_code(tmp_path, via, refused):
    directory = write_cifar10(tmp_path)
    marker = tmp_path / "ran"
    (directory / "test_batch").write_bytes(pickle.dumps({b"data": RunsCode(marker, via)}, protocol=2))
    with raises_naming("test_batch", refused):
        load_cifar10(str(directory))
    assert not marker.exists()


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
