"""WebDataset shards written here with ``tarfile``: indexing, random-access decoding, the test split,
brace patterns and folders of shards, the refusals, and training through DataLoader workers."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rlselector.data import load_dataset
from rlselector.data.stores import MemmapImages
from rlselector.data.webdataset import ShardImages, expand_braces
from rlselector.errors import InputError
from rlselector.train import TrainConfig, build_for, train


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def encoded(pixels: np.ndarray, kind: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG" if kind == "png" else "JPEG", quality=95)
    return buffer.getvalue()


def write_shards(folder: Path, prefix: str, shards: int, per_shard: int, *, seed: int = 0, extra: bool = True) -> dict[str, tuple[np.ndarray, int]]:
    """Shards of 8x8 PNGs (every third sample a JPEG) with a .cls each and a stray .json; returns key → (pixels, class)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for s in range(shards):
        with tarfile.open(folder / f"{prefix}-{s:03d}.tar", "w") as archive:
            for k in range(per_shard):
                key = f"{prefix}/{s:03d}{k:04d}"
                pixels, label = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), int(rng.integers(0, 3)) if k > 2 else k
                kind = "jpg" if k % 3 == 2 else "png"
                add(archive, f"{key}.{kind}", encoded(pixels, kind))
                add(archive, f"{key}.cls", f"{label}\n".encode())
                if extra:
                    add(archive, f"{key}.json", b'{"source": "test"}')
                written[key] = (pixels, label)
    return written


def test_braces_expand_with_their_zero_padding():
    assert expand_braces("/d/s-{000..002}.tar") == ["/d/s-000.tar", "/d/s-001.tar", "/d/s-002.tar"]
    assert expand_braces("a{1..2}b{08..09}") == ["a1b08", "a1b09", "a2b08", "a2b09"]
    assert expand_braces("plain.tar") == ["plain.tar"]
    with pytest.raises(InputError, match="runs backwards"):
        expand_braces("s-{3..1}.tar")


def test_shards_read_back_their_pixels_labels_and_keys(tmp_path):
    train_written = write_shards(tmp_path / "shards", "train", shards=3, per_shard=7)
    test_written = write_shards(tmp_path / "shards", "test", shards=1, per_shard=4, seed=1)
    spec = f"webdataset:{tmp_path}/shards/train-{{000..002}}.tar?size=8&test={tmp_path}/shards/test-000.tar"
    dataset = load_dataset(spec)
    assert isinstance(dataset.train.images, ShardImages) and tuple(dataset.train.images.shape) == (21, 3, 8, 8)
    assert list(dataset.sample_ids) == list(train_written)  # shard order, then tar order
    assert dataset.classes == ("0", "1", "2")
    assert dataset.train.labels.tolist() == [label for _, label in train_written.values()]
    assert dataset.test.labels.tolist() == [label for _, label in test_written.values()]
    order = torch.tensor([20, 0, 7, 3])  # random access across shards
    images = dataset.train.images[order]
    for row, i in enumerate(order.tolist()):
        pixels = list(train_written.values())[i][0].transpose(2, 0, 1)
        if i % 7 % 3 == 2:  # JPEG: close, not exact
            assert np.abs(images[row].numpy().astype(int) - pixels).mean() < 12
        else:
            assert np.array_equal(images[row].numpy(), pixels)
    # a folder of shards is the same data (only train-*.tar here)
    alone = tmp_path / "alone"
    alone.mkdir()
    for shard in sorted((tmp_path / "shards").glob("train-*.tar")):
        shutil.copy2(shard, alone / shard.name)  # keeps the modification times, part of the content id
    folder = load_dataset(f"webdataset:{alone}?size=8")
    assert torch.equal(folder.train.images[torch.arange(21)], dataset.train.images[torch.arange(21)]) and folder.test is None
    assert folder.fingerprint == dataset.fingerprint  # shard names, sizes and times; not the folder


def test_training_on_shards_with_two_workers_equals_reading_in_process(tmp_path):
    write_shards(tmp_path, "train", shards=2, per_shard=40, extra=False)
    config = TrainConfig(epochs=2, batch_size=16, seed=1)
    weights = []
    for workers in (0, 2):
        dataset = load_dataset(f"webdataset:{tmp_path}/train-{{000..001}}.tar?size=8")
        model = build_for(dataset, "resnet18", 4, 1)
        train(model, dataset, config, progress=False, device="cpu", workers=workers)
        weights.append(model.state_dict())
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_shards_cache_to_disk(tmp_path):
    write_shards(tmp_path, "train", shards=1, per_shard=9)
    lazy = load_dataset(f"webdataset:{tmp_path}/train-000.tar?size=8")
    cached = load_dataset(f"webdataset:{tmp_path}/train-000.tar?size=8&cache={tmp_path / 'cache'}")
    assert isinstance(cached.train.images, MemmapImages) and cached.fingerprint == lazy.fingerprint
    assert torch.equal(cached.train.images[torch.arange(9)], lazy.train.images[torch.arange(9)])


def bad_shard(path: Path, members: list[tuple[str, bytes]]) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            add(archive, name, data)


PNG = encoded(np.zeros((8, 8, 3), np.uint8), "png")


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ([("a.png", PNG)], r"sample 'a' lacks a \.cls file"),
        ([("a.cls", b"1")], r"sample 'a' lacks an image"),
        ([("a.png", PNG), ("a.cls", b"cat")], "not a class id"),
        ([("a.png", PNG), ("a.jpg", PNG), ("a.cls", b"0")], "has two images"),
        ([("notes.txt", b"x")], "lacks an image"),
    ],
)
def test_broken_samples_are_refused_by_shard_and_key(tmp_path, members, match):
    bad_shard(tmp_path / "s.tar", members)
    with pytest.raises(InputError, match=match) as info:
        load_dataset(f"webdataset:{tmp_path}/s.tar?size=8")
    assert "s.tar" in str(info.value)


def test_bad_shard_sets_are_refused(tmp_path):
    bad_shard(tmp_path / "a.tar", [("k.png", PNG), ("k.cls", b"0")])
    bad_shard(tmp_path / "b.tar", [("k.png", PNG), ("k.cls", b"0")])
    with pytest.raises(InputError, match="'k' is also in a.tar"):
        load_dataset(f"webdataset:{tmp_path}?size=8")
    with pytest.raises(InputError, match="no such shard"):
        load_dataset(f"webdataset:{tmp_path}/a-{{0..1}}.tar?size=8")
    with tarfile.open(tmp_path / "z.tar.gz", "w:gz") as archive:
        add(archive, "k.png", PNG)
    with pytest.raises(InputError, match="not a readable uncompressed tar"):
        load_dataset(f"webdataset:{tmp_path}/z.tar.gz?size=8")
    with pytest.raises(InputError, match=r"\?size=N"):
        load_dataset(f"webdataset:{tmp_path}/a.tar")
