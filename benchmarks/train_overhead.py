"""Training-loop overhead: rlselector's train() against a bare forward/backward loop.

Same model (ResNet-18 width 16), same batch size, same data (Fashion-MNIST), same thread count;
the two alternate in one process (bare, loop, bare, loop, ...) so machine load hits both alike.
The bare loop only indexes the uint8 images, scales them and runs forward, loss, backward, step.
The project's loop adds augmentation, per-sample losses and features handed to hooks, the
progress bar, the JSON-lines log and an atomic checkpoint every epoch.

    .venv/bin/python benchmarks/train_overhead.py --samples 12000 --rounds 3
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

from rlselector import load_dataset
from rlselector.train import TrainConfig, build_for, train


def bare_epoch(model, dataset, batch_size: int, seed: int) -> float:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    mean, std = dataset.channel_stats
    start = time.perf_counter()
    for batch in torch.split(order, batch_size):
        images, labels = dataset.train.batch(batch)
        x = (images.float() / 255.0 - mean[0]) / std[0]
        loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12000, help="training images per epoch")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (one epoch each)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist", limit=args.samples, seed=0)
    # warm-up: the first convolutions of a shape pay one-off kernel set-up costs
    bare_epoch(build_for(dataset, "resnet18", 16, 0), dataset.subset(range(512)), args.batch_size, 0)
    bare_rates, loop_rates = [], []
    for round_index in range(args.rounds):
        bare_rates.append(bare_epoch(build_for(dataset, "resnet18", 16, round_index), dataset, args.batch_size, round_index))
        model = build_for(dataset, "resnet18", 16, round_index)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()  # wall time of the whole call, checkpoint and log included
            train(model, dataset, TrainConfig(epochs=1, batch_size=args.batch_size, seed=round_index),
                  out_dir=out, progress=True, evaluate_test=False)
            loop_rates.append(len(dataset) / (time.perf_counter() - start))
        print(f"round {round_index + 1}: bare {bare_rates[-1]:.0f} img/s, train() {loop_rates[-1]:.0f} img/s", flush=True)
    bare, loop = statistics.median(bare_rates), statistics.median(loop_rates)
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print("| loop | images/s (median of %d) |" % args.rounds)
    print("|---|---|")
    print(f"| bare forward/backward | {bare:.0f} |")
    print(f"| rlselector train() (augmentation, hooks data, progress, log, checkpoint) | {loop:.0f} |")
    print(f"| overhead | {100 * (bare / loop - 1):.1f} % |")


if __name__ == "__main__":
    main()
