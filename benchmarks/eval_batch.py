"""Which batch size runs an eval-mode pass fastest on this machine? (``rlselector.train.evaluate.EVAL_BATCH``)

One untrained ResNet-18 width 16 (speed does not depend on the weights) reads a stratified subset of
Fashion-MNIST in eval mode (``forward_split``, features and logits) at each batch size, the sizes
alternating over ``--rounds``; CPU seconds of the process and wall seconds per pass, median over rounds.

    .venv/bin/python benchmarks/eval_batch.py --limit 3000 --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from rlselector import load_dataset
from rlselector.data.transforms import BatchTransform
from rlselector.models import build_model
from rlselector.train.evaluate import forward_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 1024])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    model = build_model("resnet18", in_channels=1, num_classes=data.num_classes, image_size=28, width=16)
    transform = BatchTransform.for_dataset(data, augment=False)
    forward_split(model, data.train, transform, batch_size=args.sizes[0])  # warm-up: oneDNN's first-call setup
    cpu: dict[int, list[float]] = {size: [] for size in args.sizes}
    wall: dict[int, list[float]] = {size: [] for size in args.sizes}
    for _ in range(args.rounds):
        for size in args.sizes:
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            forward_split(model, data.train, transform, batch_size=size)
            cpu[size].append(time.process_time() - cpu_start)
            wall[size].append(time.perf_counter() - wall_start)
    print(f"fashion-mnist {len(data):,} images, ResNet-18 w16 eval-mode pass; {platform.machine()}, {args.threads} torch thread(s), "
          f"torch {torch.__version__}, median of {args.rounds}\n")
    print("| batch | CPU s | wall s | images/s (wall) |")
    print("|---:|---:|---:|---:|")
    for size in args.sizes:
        seconds = statistics.median(wall[size])
        print(f"| {size} | {statistics.median(cpu[size]):.2f} | {seconds:.2f} | {len(data) / seconds:.0f} |")


if __name__ == "__main__":
    main()
