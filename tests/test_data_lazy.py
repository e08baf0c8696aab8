"""Images read on demand: the lazy image folder (the in-memory path's very pixels and batches, with
DataLoader workers), subsets that read nothing, the memory-mapped cache, and the ImageNet layout."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rlselector.data.stores as stores
from rlselector.data import load_dataset
from rlselector.data.base import IndexedImages
from rlselector.data.stores import FileImages, MemmapImages
from rlselector.errors import InputError
from rlselector.train import TrainConfig, TrainHook, build_for, train

CLASSES = ("cat", "dog", "owl")


def write_pngs(root: Path, per_class: int = 40, test: int = 5, shape=(12, 10)) -> Path:
    """RGB PNGs of 12x10 (H x W) pixels, so ?size=8 resizes every one."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", test)):
        for name in CLASSES:
            for k in range(count):
                path = root / split / name / f"{k:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(path)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_pngs(tmp_path_factory.mktemp("pngs"))


class Batches(TrainHook):
    """Every step's indices and network input, to compare two runs batch by batch."""

    def __init__(self):
        self.steps = []

    def on_batch(self, batch):
        self.steps.append((batch.indices.clone(), batch.images.clone()))


def test_lazy_folder_reads_the_in_memory_pixels_labels_and_ids(tree):
    memory = load_dataset(f"folder:{tree}?size=8")
    lazy = load_dataset(f"folder:{tree}?size=8&lazy")
    assert isinstance(lazy.train.images, FileImages) and isinstance(lazy.test.images, FileImages)
    assert tuple(lazy.train.images.shape) == tuple(memory.train.images.shape) == (120, 3, 8, 8)
    assert torch.equal(lazy.train.images[torch.arange(120)], memory.train.images)
    assert torch.equal(lazy.test.images[torch.arange(15)], memory.test.images)
    assert torch.equal(lazy.train.labels, memory.train.labels) and lazy.classes == memory.classes == CLASSES
    assert list(lazy.sample_ids) == list(memory.sample_ids) and lazy.sample_ids[0] == "train/cat/000.png"
    assert lazy.channel_stats == memory.channel_stats
    # a subset reads nothing until a batch is drawn, and then the right images
    subset = lazy.subset(np.array([5, 50, 119]))
    assert isinstance(subset.train.images, IndexedImages) and tuple(subset.train.images.shape) == (3, 3, 8, 8)
    assert torch.equal(subset.train.images[torch.tensor([2, 0])], memory.train.images[torch.tensor([119, 5])])
    nested = subset.subset(np.array([1]))
    assert torch.equal(nested.train.images[torch.tensor([0])], memory.train.images[torch.tensor([50])])
    assert nested.train.images.store is lazy.train.images  # one level of indirection, however deep the subsets
    assert lazy.fingerprint != subset.fingerprint != nested.fingerprint


def test_lazy_folder_with_two_workers_gives_the_same_batches_and_weights(tree):
    memory = load_dataset(f"folder:{tree}?size=8")
    lazy = load_dataset(f"folder:{tree}?size=8&lazy")
    config = TrainConfig(epochs=2, batch_size=16, lr=0.05, seed=3)
    runs = []
    for dataset, workers in ((memory, 0), (lazy, 2)):
        batches, model = Batches(), build_for(dataset, "resnet18", 4, 3)
        result = train(model, dataset, config, hooks=[batches], progress=False, device="cpu", workers=workers)
        runs.append((batches.steps, model.state_dict(), result))
    (steps_a, weights_a, result_a), (steps_b, weights_b, result_b) = runs
    assert len(steps_a) == len(steps_b) == 16  # 120 / 16 = 7.5 → 8 steps per epoch
    for (index_a, images_a), (index_b, images_b) in zip(steps_a, steps_b):
        assert torch.equal(index_a, index_b) and torch.equal(images_a, images_b)
    for key, value in weights_a.items():
        assert torch.equal(value, weights_b[key]), key
    assert result_a.top1 == result_b.top1 and [r["train_loss"] for r in result_a.history] == [r["train_loss"] for r in result_b.history]


def test_lazy_reading_needs_a_size_and_names_a_damaged_file_when_it_is_read(tmp_path):
    root = write_pngs(tmp_path / "data", per_class=2, test=1)
    with pytest.raises(InputError, match=r"needs their size up front; add \?size=N"):
        load_dataset(f"folder:{root}?lazy")
    with pytest.raises(InputError, match="unknown option 'lazy=1'"):
        load_dataset(f"folder:{root}?size=8&lazy=1")
    (root / "train" / "dog" / "001.png").write_bytes(b"not a png")
    lazy = load_dataset(f"folder:{root}?size=8&lazy")  # nothing decoded yet
    lazy.train.images[torch.tensor([0, 1, 2])]
    with pytest.raises(InputError, match=r"dog/001\.png: cannot decode"):
        lazy.train.images[torch.tensor([3])]


def test_the_disk_cache_is_built_once_atomically_and_reused(tree, tmp_path, monkeypatch):
    lazy = load_dataset(f"folder:{tree}?size=8&lazy")
    cache = tmp_path / "cache"
    built = []
    original = stores._build_cache
    monkeypatch.setattr(stores, "_build_cache", lambda store, path: built.append(path.name) or original(store, path))
    first = load_dataset(f"folder:{tree}?size=8&cache={cache}")
    assert isinstance(first.train.images, MemmapImages) and len(built) == 2  # train and test
    files = sorted(path.name for path in cache.iterdir())
    assert len(files) == 2 and all(name.endswith(".npy") for name in files)
    assert any("-train-120x3x8x8-" in name for name in files)
    second = load_dataset(f"folder:{tree}?size=8&cache={cache}")
    assert len(built) == 2 and sorted(path.name for path in cache.iterdir()) == files  # reused, not rebuilt
    assert torch.equal(second.train.images[torch.arange(120)], lazy.train.images[torch.arange(120)])
    assert second.fingerprint == lazy.fingerprint  # the same content, cached or not
    cached = np.load(cache / next(name for name in files if "-train-" in name), mmap_mode="r")
    assert cached.dtype == np.uint8 and np.array_equal(cached[7], lazy.train.images[torch.tensor([7])][0].numpy())


def test_an_interrupted_cache_build_leaves_nothing_and_changed_files_get_a_new_cache(tmp_path, monkeypatch):
    root = write_pngs(tmp_path / "data", per_class=100, test=1)  # 300 images: five chunks of 64
    cache = tmp_path / "cache"
    monkeypatch.setattr(stores, "CACHE_CHUNK", 64)
    calls = []
    original = FileImages.decode

    def decode_then_fail(self, i):
        calls.append(i)
        if len(calls) > 100:
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(FileImages, "decode", decode_then_fail)
    monkeypatch.setattr(stores, "CACHE_WORKERS", 0)  # decode in this process, where the patch applies
    with pytest.raises(KeyboardInterrupt):
        load_dataset(f"folder:{root}?size=8&cache={cache}")
    assert list(cache.iterdir()) == []  # no cache, no temporary file
    monkeypatch.setattr(FileImages, "decode", original)
    load_dataset(f"folder:{root}?size=8&cache={cache}")
    before = {path.name for path in cache.iterdir()}
    Image.fromarray(np.zeros((12, 10, 3), np.uint8)).save(root / "train" / "owl" / "000.png")
    changed = load_dataset(f"folder:{root}?size=8&cache={cache}")
    after = {path.name for path in cache.iterdir()}
    assert len(after - before) == 1 and "-train-" in next(iter(after - before))  # the test split is unchanged
    owl = changed.sample_ids.tolist().index("train/owl/000.png")
    assert changed.train.images[torch.tensor([owl])].sum() == 0


# --- ImageNet layout -------------------------------------------------------------------------------
WNIDS = ("n01440764", "n01443537", "n01484850")


def halves(width: int, height: int, left: int, right: int) -> Image.Image:
    """An image whose left half has grey level ``left`` and right half ``right``."""
    pixels = np.full((height, width, 3), left, np.uint8)
    pixels[:, width // 2:] = right
    return Image.fromarray(pixels)


def write_imagenet(root: Path, val_layout: str) -> Path:
    for k, wnid in enumerate(WNIDS):
        folder = root / "train" / wnid
        folder.mkdir(parents=True)
        for i in range(3):
            halves(48 + 16 * i, 32, 40 * k, 200).save(folder / f"{wnid}_{i}.JPEG", quality=95)
    (root / "LOC_synset_mapping.txt").write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\nn01484850 great white shark\n")
    truth = {f"ILSVRC2012_val_{i:08d}": WNIDS[(2 * i) % 3] for i in range(1, 5)}
    for name, wnid in truth.items():
        folder = root / "val" / wnid if val_layout == "folders" else root / "val"
        folder.mkdir(parents=True, exist_ok=True)
        halves(40, 60, 0, 255).save(folder / f"{name}.JPEG", quality=95)
    if val_layout == "solution":
        with open(root / "LOC_val_solution.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ImageId", "PredictionString"])
            writer.writerows([name, f"{wnid} 1 2 30 40 {wnid} 3 4 20 20"] for name, wnid in reversed(truth.items()))
    elif val_layout == "labels":
        (root / "val_labels.txt").write_text("".join(f"{name}.JPEG {wnid}\n" for name, wnid in truth.items()))
    return root


@pytest.mark.parametrize("val_layout", ["folders", "solution", "labels"])
def test_imagenet_layouts_give_the_same_classes_labels_and_centre_crops(tmp_path, val_layout):
    root = write_imagenet(tmp_path / "imagenet", val_layout)
    dataset = load_dataset(f"imagenet:{root}?size=16")
    assert dataset.classes == ("tench", "goldfish", "great white shark")
    assert dataset.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert dataset.sample_ids[3] == "train/n01443537/n01443537_0.JPEG"
    assert tuple(dataset.train.images.shape) == (9, 3, 16, 16) and tuple(dataset.test.images.shape) == (4, 3, 16, 16)
    stems = [Path(path).stem for path in dataset.test.images.files.astype(str)]
    wnid_of = {f"ILSVRC2012_val_{i:08d}": WNIDS[(2 * i) % 3] for i in range(1, 5)}
    assert dataset.test.labels.tolist() == [WNIDS.index(wnid_of[stem]) for stem in stems]
    # shorter side to 16, centre cut: a 80x32 image (left half 80, right half 200) keeps 16 columns
    # around its middle, half from each side; a 40x60 portrait keeps its full width
    wide = dataset.train.images[torch.tensor([8])][0].float()
    assert abs(wide[:, :, :6].mean() - 80) < 6 and abs(wide[:, :, -6:].mean() - 200) < 6
    tall = dataset.test.images[torch.tensor([0])][0].float()
    assert abs(tall[:, :, :6].mean() - 0) < 6 and abs(tall[:, :, -6:].mean() - 255) < 6


def test_imagenet_refuses_an_unlabelled_flat_val_and_a_missing_size(tmp_path):
    root = write_imagenet(tmp_path / "imagenet", "labels")
    with pytest.raises(InputError, match=r"\?size=N"):
        load_dataset(f"imagenet:{root}")
    (root / "val_labels.txt").write_text("ILSVRC2012_val_00000001 n01440764\n")
    with pytest.raises(InputError, match="not listed in .*val_labels.txt"):
        load_dataset(f"imagenet:{root}?size=16")
    (root / "val_labels.txt").unlink()
    with pytest.raises(InputError, match="no label file"):
        load_dataset(f"imagenet:{root}?size=16")


def test_input_thumbnails_pool_by_hand_and_read_lazy_files_alike(tree):
    from rlselector.data.base import Split
    from rlselector.data.loader import input_thumbnails

    # One 1-channel 4×4 image pooled to 2×2: the mean of each 2×2 block, in row order.
    image = torch.tensor([[[[0, 2, 4, 6], [2, 4, 6, 8], [10, 10, 0, 0], [10, 10, 0, 4]]]], dtype=torch.uint8)
    split = Split(image, torch.tensor([0]))
    assert input_thumbnails(split, side=2).tolist() == [[2.0, 6.0, 10.0, 1.0]]
    assert input_thumbnails(split, side=16).tolist() == [image.float().flatten().tolist()]  # never enlarged
    # 120 RGB 8×8 images pooled to 4×4: (120, 3·4·4), the same from files as from memory.
    memory, lazy = load_dataset(f"folder:{tree}?size=8"), load_dataset(f"folder:{tree}?size=8&lazy")
    thumbs = input_thumbnails(lazy.train, side=4, batch_size=50)
    assert thumbs.shape == (120, 48)
    assert torch.equal(thumbs, input_thumbnails(memory.train, side=4))
    expected = torch.nn.functional.avg_pool2d(memory.train.images[7:8].float(), 2).flatten()
    assert torch.allclose(thumbs[7], expected)
