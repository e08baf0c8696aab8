"""from_hf: a Hugging Face datasets.Dataset built in memory (never downloaded) read into the project's Dataset."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from data_helpers import raises_naming
from PIL import Image

from rlselector.data import from_hf, from_torch
from rlselector.errors import InputError

PIXELS = np.random.default_rng(0).integers(0, 256, (8, 12, 20, 3), dtype=np.uint8)  # non-square, HWC


@pytest.fixture
def hf():
    return pytest.importorskip("datasets", reason="the optional extra rlselector[hf] (datasets) is not installed")


def rows(hf, labels=(0, 1, 2, 0, 1, 2, 0, 1), *, label_feature=None, **extra):
    features = {"image": hf.Image(), "label": label_feature or hf.ClassLabel(names=["ant", "bee", "cat"])}
    features.update({name: hf.Value("string" if isinstance(values[0], str) else "float32") for name, values in extra.items()})
    return hf.Dataset.from_dict(
        {"image": [Image.fromarray(p) for p in PIXELS[: len(labels)]], "label": list(labels), **extra},
        features=hf.Features(features),
    )


def test_images_labels_class_names_and_fingerprint(hf):
    dataset = from_hf(rows(hf), test=rows(hf, (2, 1)), progress=False)
    assert dataset.classes == ("ant", "bee", "cat") and dataset.name == "hf:dataset"
    assert np.array_equal(dataset.train.images.numpy(), PIXELS.transpose(0, 3, 1, 2))
    assert dataset.train.labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1] and dataset.test.labels.tolist() == [2, 1]
    assert dataset.image_shape == (12, 20) and dataset.sample_ids.tolist() == list(range(8))  # the row numbers
    assert from_hf(rows(hf), progress=False).fingerprint == dataset.fingerprint
    # The fingerprint follows the pixels and labels, not the wrapper they came in.
    same = [(torch.from_numpy(p.transpose(2, 0, 1).copy()), int(y)) for p, y in zip(PIXELS, dataset.train.labels)]

    class Same(torch.utils.data.Dataset):
        def __len__(self):
            return len(same)

        def __getitem__(self, i):
            return same[i]

    assert from_torch(Same(), classes=dataset.classes, progress=False).fingerprint == dataset.fingerprint


def test_label_columns_without_class_label_and_an_id_column(hf):
    names = rows(hf, ("owl", "emu", "owl", "emu"), label_feature=hf.Value("string"), key=["d", "c", "b", "a"])
    dataset = from_hf(names, id_column="key", name="birds", progress=False)
    assert dataset.classes == ("emu", "owl") and dataset.train.labels.tolist() == [1, 0, 1, 0]
    assert dataset.name == "birds" and dataset.sample_ids.tolist() == ["d", "c", "b", "a"]
    subset = dataset.subset([3, 0])
    assert subset.sample_ids.tolist() == ["a", "d"]
    ints = from_hf(rows(hf, (1, 0, 1, 0), label_feature=hf.Value("int64")), progress=False)
    assert ints.classes == ("0", "1")


def test_ids_survive_limit(hf):
    dataset = from_hf(rows(hf, key=[f"row-{k}" for k in range(8)]), id_column="key", progress=False)
    limited = dataset.limit(5, seed=1)
    assert np.array_equal(limited.sample_ids, dataset.sample_ids[limited.parent_indices])


@pytest.mark.parametrize(
    ("call", "culprit", "match"),
    [
        (lambda hf: from_hf(rows(hf), image_column="img"), "'img'", "no column"),
        (lambda hf: from_hf(hf.DatasetDict(train=rows(hf))), "DatasetDict", r"d\['train'\]"),
        (lambda hf: from_hf([1, 2]), "list", "not a datasets.Dataset"),
        (lambda hf: from_hf(rows(hf, key=["a"] * 8), id_column="key"), "row 1, column 'key'", "unique"),
        (lambda hf: from_hf(rows(hf, score=[0.5] * 8), id_column="score"), "'score'", "integers or all strings"),
        (lambda hf: from_hf(rows(hf), test=rows(hf, label_feature=hf.ClassLabel(names=["x", "y", "z"]))), "test", "ClassLabel"),
        (lambda hf: from_hf(rows(hf, (0, 5), label_feature=hf.Value("int64")), test=rows(hf, (0, 9), label_feature=hf.Value("int64"))), "ds", "no training samples"),
    ],
)
def test_bad_datasets_are_refused_by_column(hf, call, culprit, match):
    with raises_naming(culprit, match):
        call(hf)


def test_a_missing_datasets_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'rlselector\[hf\]'"):
        from_hf(object())
