"""How fast does an eval-mode pass run on this machine? Batch size (``EVAL_BATCH``) and the frozen copy (``FROZEN_MIN_BATCHES``).

``batch``: one untrained ResNet-18 width 16 (speed does not depend on the weights) reads a stratified
subset of Fashion-MNIST in eval mode (``forward_split``, features and logits, eager) at each batch
size, the sizes alternating over ``--rounds``. ``frozen``: each model of ``--models`` reads the same
images at batch 128, eager and as the frozen TorchScript copy in turn, and the largest difference
of their features is printed. CPU seconds of the process and wall seconds per pass, median over rounds.

    .venv/bin/python benchmarks/eval_batch.py batch --limit 3000 --threads 1 --rounds 3
    .venv/bin/python benchmarks/eval_batch.py frozen --limit 6000 --threads 1 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from typing import Callable

import numpy as np
import torch

from rlselector import load_dataset
from rlselector.data.transforms import BatchTransform
from rlselector.models import build_model
from rlselector.train.evaluate import forward_split


def timed(rounds: int, passes: dict[str, Callable[[], tuple]]) -> tuple[dict[str, float], dict[str, float], dict[str, tuple]]:
    """Median CPU and wall seconds of each pass, run in turn ``rounds`` times, and its last output."""
    cpu: dict[str, list[float]] = {name: [] for name in passes}
    wall: dict[str, list[float]] = {name: [] for name in passes}
    outputs = {}
    for _ in range(rounds):
        for name, run in passes.items():
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            outputs[name] = run()
            cpu[name].append(time.process_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    return ({name: statistics.median(v) for name, v in cpu.items()}, {name: statistics.median(v) for name, v in wall.items()}, outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("batch", "frozen"))
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 1024], help="batch: the batch sizes")
    parser.add_argument("--models", nargs="+", default=["resnet18", "resnet50", "vgg16", "densenet121", "vit_small"], help="frozen: the models")
    parser.add_argument("--width", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    transform = BatchTransform.for_dataset(data, augment=False)
    header = f"fashion-mnist {len(data):,} images; {platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}, median of {args.rounds}\n"
    if args.command == "batch":
        model = build_model("resnet18", in_channels=1, num_classes=data.num_classes, image_size=28, width=args.width)
        forward_split(model, data.train, transform, batch_size=args.sizes[0], frozen=False)  # warm-up: oneDNN's first-call setup
        cpu, wall, _ = timed(args.rounds, {str(size): (lambda size=size: forward_split(model, data.train, transform, batch_size=size, frozen=False))
                                           for size in args.sizes})
        print(f"ResNet-18 w{args.width} eval-mode pass (eager), {header}")
        print("| batch | CPU s | wall s | images/s (wall) |")
        print("|---:|---:|---:|---:|")
        for size in map(str, args.sizes):
            print(f"| {size} | {cpu[size]:.2f} | {wall[size]:.2f} | {len(data) / wall[size]:.0f} |")
        return
    print(f"width {args.width}, batch 128, eager against the frozen copy (its freezing included), {header}")
    print("| model | eager CPU s | frozen CPU s | speed-up | largest feature difference (of the largest feature) |")
    print("|---|---:|---:|---:|---|")
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, in_channels=1, num_classes=data.num_classes, image_size=28, width=args.width)
        allowed, model.frozen_cpu_inference = model.frozen_cpu_inference, True  # measured on every model, those that stay eager too
        cpu, _, out = timed(args.rounds, {
            "eager": lambda: forward_split(model, data.train, transform, batch_size=128, frozen=False),
            "frozen": lambda: forward_split(model, data.train, transform, batch_size=128, frozen=True),
        })
        difference = float(np.abs(out["frozen"][0] - out["eager"][0]).max())
        print(f"| {name}{'' if allowed else ' (stays eager)'} | {cpu['eager']:.2f} | {cpu['frozen']:.2f} | {cpu['eager'] / cpu['frozen']:.2f}× | "
              f"{difference:.2g} ({float(np.abs(out['eager'][0]).max()):.3g}) |", flush=True)


if __name__ == "__main__":
    main()
