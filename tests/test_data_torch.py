"""from_torch: a user's map-style torch Dataset read into the project's Dataset; sample IDs through subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_helpers import raises_naming
from PIL import Image

from rlselector.data import from_torch
from rlselector.data.transforms import BatchTransform

PIXELS = torch.randint(0, 256, (12, 3, 12, 20), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(12) % 3


class Tensors(torch.utils.data.Dataset):
    """(float CHW tensor in [0, 1] or uint8, label tensor), as torchvision's ToTensor gives."""

    classes = ["ant", "bee", "cat"]

    def __init__(self, as_float: bool = True, images: torch.Tensor = PIXELS, labels=LABELS) -> None:
        self.images, self.labels, self.as_float = images, labels, as_float

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i]
        return (image.float() / 255 if self.as_float else image), self.labels[i]


class Items(torch.utils.data.Dataset):
    """Any list of (image, label) items."""

    def __init__(self, items) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def test_float_and_uint8_tensors_give_the_same_pixels_and_a_fingerprint_stable_across_loads():
    floats = from_torch(Tensors(), progress=False)
    again = from_torch(Tensors(), progress=False)
    uint8 = from_torch(Tensors(as_float=False), name="mine", progress=False)
    assert torch.equal(floats.train.images, PIXELS) and floats.train.labels.tolist() == LABELS.tolist()
    assert floats.fingerprint == again.fingerprint == uint8.fingerprint
    assert floats.name == "torch:Tensors" and uint8.name == "mine" and floats.test is None
    assert floats.classes == ("ant", "bee", "cat")  # from ds.classes, as torchvision datasets carry them
    assert floats.sample_ids.tolist() == list(range(12))
    changed = PIXELS.clone()
    changed[3, 0, 0, 0] ^= 1
    assert from_torch(Tensors(images=changed), progress=False).fingerprint != floats.fingerprint


def test_pil_images_class_names_and_a_test_split():
    grey = [Image.fromarray(np.full((6, 6), 40 * k, np.uint8)) for k in range(4)]
    train = Items([(grey[k], ["dog", "cat"][k % 2]) for k in range(4)])
    test = Items([(grey[0], "cat")])
    dataset = from_torch(train, test=test, progress=False)
    assert dataset.classes == ("cat", "dog") and dataset.train.labels.tolist() == [1, 0, 1, 0]
    assert dataset.in_channels == 1 and dataset.train.images[2, 0, 0, 0] == 80
    assert dataset.test.labels.tolist() == [0] and dataset.test.images.shape == (1, 1, 6, 6)
    colour = Items([(Image.new("RGB", (6, 6), (1, 2, 3)), 0), (torch.zeros(1, 6, 6), 1)])
    mixed = from_torch(colour, classes=["a", "b"], progress=False)
    assert mixed.in_channels == 3 and mixed.train.images[0, :, 0, 0].tolist() == [1, 2, 3]


def test_non_square_images_keep_their_shape_and_augment():
    dataset = from_torch(Tensors(), progress=False)
    assert dataset.image_shape == (12, 20) and dataset.image_size == 12
    transform = BatchTransform.for_dataset(dataset, augment=True)
    assert transform(dataset.train.images[:4], torch.Generator().manual_seed(0)).shape == (4, 3, 12, 20)


class Augmenting(Tensors):
    def __getitem__(self, i):
        return torch.rand(3, 4, 4), 0


class Streaming(torch.utils.data.IterableDataset):
    def __iter__(self):
        yield torch.zeros(3, 4, 4), 0

    def __len__(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("ds", "culprit", "match"),
    [
        (Augmenting(), "ds[0]", "another image each time"),
        (Streaming(), "IterableDataset", "not a map-style dataset"),
        (Items([]), "ds", "no samples"),
        (Items([torch.zeros(3, 4, 4)]), "ds[0]", r"expected \(image, label\)"),
        (Items([(torch.zeros(4, 4, 3), 0)]), "ds[0]", r"permute\(2, 0, 1\)"),
        (Items([(torch.full((3, 4, 4), 2.0), 0)]), "ds[0]", r"float pixels must lie in \[0, 1\]"),
        (Items([("a.png", 0)]), "ds[0]", "the image is a str"),
        (Items([(torch.zeros(3, 4, 4), 0), (torch.zeros(3, 4, 5), 1)]), "ds[1]", "5x4 but from_torch: ds.0. is 4x4"),
        (Items([(torch.zeros(3, 4, 4), 0.5)]), "ds[0] label", "neither an integer"),
        (Items([(torch.zeros(3, 4, 4), 0), (torch.zeros(3, 4, 4), "cat")]), "ds[1] label", "one kind"),
        (Items([(torch.zeros(3, 4, 4), -1)]), "ds[0] label", r"must lie in \[0, 0\)"),
    ],
)
def test_bad_datasets_are_refused_by_sample(ds, culprit, match):
    with raises_naming(culprit, match):
        from_torch(ds, progress=False)


def test_labels_outside_the_given_classes_are_refused():
    with raises_naming("ds[2] label", r"must lie in \[0, 2\)"):
        from_torch(Tensors(), classes=["ant", "bee"], progress=False)
    with raises_naming("test[0] label", "no training sample has this class"):
        from_torch(Items([(torch.zeros(3, 4, 4), "a")]), test=Items([(torch.zeros(3, 4, 4), "b")]), progress=False)


def test_sample_ids_survive_limit_and_subsets():
    parent = from_torch(Tensors(images=PIXELS.repeat(4, 1, 1, 1), labels=LABELS.repeat(4)), progress=False)
    limited = parent.limit(12, seed=3)
    assert np.array_equal(limited.sample_ids, parent.sample_ids[limited.parent_indices])
    nested = limited.subset([0, 5, 7])
    assert np.array_equal(nested.sample_ids, parent.sample_ids[nested.parent_indices])
    assert torch.equal(nested.train.images, parent.train.images[torch.as_tensor(nested.parent_indices)])
