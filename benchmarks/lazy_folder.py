"""Lazy image folder against the in-memory one: load time, images/s read and trained, peak RSS.

Generates ``--images`` 32x32 RGB PNGs (10 classes) under ``--root`` once, then runs each mode in a
fresh process (so each peak RSS is its own): ``memory`` decodes every file at load
(``folder:ROOT``), ``lazy`` lists them and decodes each batch in DataLoader workers
(``folder:ROOT?size=32&lazy``). Per mode: the load; one pass over an epoch's batches (batch 256,
the training loop's reader, ``--workers`` processes) in images/s; one epoch of ``train()``
(ResNet-18 width 8, one torch thread) on a ``--train-images`` subset; the main process's peak RSS
after its imports, after the load and at the end, and the peak RSS of its largest worker (pages it
shares with the main process counted).

    .venv/bin/python benchmarks/lazy_folder.py --root /tmp/lazy-png-100k --images 100000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def generate(root: Path, count: int) -> None:
    """``count`` PNGs in root/train/<class>/ and 1,000 in root/test/<class>/, written once (a marker file says done)."""
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return
    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("test", 1000)):
        for k in range(n):
            label = k % 10
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            base = np.zeros((32, 32, 3), np.uint8) + np.array([25 * label, 255 - 25 * label, 128], np.uint8)
            noise = rng.integers(0, 64, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(base + noise).save(folder / f"{k:06d}.png")
    done.write_text("")


def measure(root: Path, mode: str, workers: int, train_images: int) -> dict:
    import torch

    from rlselector import load_dataset
    from rlselector.data.loader import read_batches
    from rlselector.train import TrainConfig, build_for, train
    from rlselector.train.distributed import DistributedContext
    from rlselector.train.loop import epoch_batches

    torch.set_num_threads(1)
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    dataset = load_dataset(f"folder:{root}" if mode == "memory" else f"folder:{root}?size=32&lazy")
    load_s = time.perf_counter() - start
    rss_after_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    batches = epoch_batches(len(dataset), 256, 0, 0, DistributedContext())
    start = time.perf_counter()
    for _ in read_batches(dataset.train, batches, workers=workers, pin_memory=False, generator=torch.Generator()):
        pass
    read_rate = len(dataset) / (time.perf_counter() - start)

    subset = dataset.subset(np.arange(0, len(dataset), max(1, len(dataset) // train_images))[:train_images], tag="bench")
    model = build_for(subset, "resnet18", 8, 0)
    result = train(model, subset, TrainConfig(epochs=1, batch_size=128, seed=0), progress=False, evaluate_test=False,
                   device="cpu", workers=workers)
    return {
        "mode": mode, "images": len(dataset), "load_s": load_s, "read_images_per_s": read_rate,
        "train_images_per_s": result.images_per_second, "train_images": len(subset),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_after_load_mb": rss_after_load, "rss_imports_mb": rss_imports,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/lazy-png-100k"))
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--train-images", type=int, default=10_000)
    parser.add_argument("--mode", choices=("memory", "lazy"), help="(internal) measure one mode in this process")
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(measure(args.root, args.mode, args.workers, args.train_images)))
        return
    start = time.perf_counter()
    generate(args.root, args.images)
    print(f"{args.images:,} PNGs under {args.root} ({time.perf_counter() - start:.0f} s to generate or find)", flush=True)
    rows = []
    for mode in ("memory", "lazy"):
        done = subprocess.run([sys.executable, __file__, "--root", str(args.root), "--workers", str(args.workers),
                               "--train-images", str(args.train_images), "--mode", mode], check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    print()
    print(f"machine: {platform.processor() or platform.machine()}, 1 torch thread, {args.workers} DataLoader workers")
    print("| source | load s | read images/s (batch 256) | train() images/s (ResNet-18 w8, %s images) | RSS after imports MB "
          "| after load MB | peak MB | peak of a worker MB |" % f"{args.train_images:,}")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        name = "in memory (`folder:ROOT`)" if row["mode"] == "memory" else "lazy (`folder:ROOT?size=32&lazy`)"
        print(f"| {name} | {row['load_s']:.1f} | {row['read_images_per_s']:,.0f} | {row['train_images_per_s']:,.0f} | "
              f"{row['rss_imports_mb']:,.0f} | {row['rss_after_load_mb']:,.0f} | {row['peak_rss_mb']:,.0f} | {row['worker_peak_rss_mb']:,.0f} |")


if __name__ == "__main__":
    main()
