"""Overhead of the loop API (rlselector.SelectionLoop) inside a user's own training loop.

The same plain PyTorch loop (ResNet-18 width 16, SGD, batch 128, Fashion-MNIST) runs without the
loop API and with it, for a dynamics-based baseline (EL2N: per-sample loss, margins and the
logits+features stand-ins of every epoch recorded), a features-based one (herding: every sample's
latest features) and RL-Selector (the agent acting from epoch 2, the ε-cover after each epoch).
The configurations alternate within each round (none, el2n, herding, rl-selector, none, ...) so
machine load hits all alike; each run trains a fresh network for ``--epochs`` epochs. The time of a
run is its epochs (steps plus the ``observe`` / ``end_epoch`` calls); ``finish`` (the method's
decision after training) is reported apart.

    .venv/bin/python benchmarks/loop_overhead.py --samples 6000 --epochs 3 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from rlselector import SelectionLoop, load_dataset
from rlselector.train import build_for

METHODS = (None, "el2n", "herding", "rl-selector")


def run(dataset, method: str | None, epochs: int, batch_size: int, seed: int) -> tuple[float, float]:
    """(seconds of the training epochs, seconds of finish) of one run of the user's loop."""
    model = build_for(dataset, "resnet18", 16, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    mean, std = dataset.channel_stats
    extra = {"epochs": epochs} if method == "rl-selector" else {}
    loop = None if method is None else SelectionLoop(dataset.train.labels, 0.5, method, seed=seed, progress=False, **extra)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for index in torch.split(torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed * 1000 + epoch)), batch_size):
            images, labels = dataset.train.batch(index)
            features = model.features((images.float() / 255.0 - mean[0]) / std[0])
            logits = model.classifier(features)
            loss = F.cross_entropy(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if loop is not None:
                loop.observe(index, features=features, logits=logits, labels=labels)
        if loop is not None:
            loop.end_epoch(lr=optimizer.param_groups[0]["lr"])
    trained = time.perf_counter() - start
    if loop is None:
        return trained, 0.0
    start = time.perf_counter()
    loop.finish()
    return trained, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6000, help="Fashion-MNIST training images")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (RL-Selector acts from the second)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds, one run of each configuration each")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist", limit=args.samples, seed=0)
    run(dataset.subset(range(512)), None, 1, args.batch_size, 0)  # warm-up: one-off kernel set-up costs
    seconds: dict[str, list[float]] = {str(m): [] for m in METHODS}
    finish: dict[str, list[float]] = {str(m): [] for m in METHODS}
    for round_index in range(args.rounds):
        for method in METHODS:
            trained, finished = run(dataset, method, args.epochs, args.batch_size, round_index)
            seconds[str(method)].append(trained)
            finish[str(method)].append(finished)
            print(f"round {round_index + 1}: {method or 'no loop API':12s} {trained:7.2f} s training, {finished:6.2f} s finish", flush=True)
    base = statistics.median(seconds["None"])
    rows = {
        method: {
            "train_s_median": round(statistics.median(values), 3),
            "overhead_pct": round(100 * (statistics.median(values) / base - 1), 2),
            "finish_s_median": round(statistics.median(finish[method]), 3),
        }
        for method, values in seconds.items()
    }
    print(f"\n{args.samples} images, {args.epochs} epochs, {args.threads} thread(s), {platform.processor() or platform.machine()}")
    for method, row in rows.items():
        print(f"{method if method != 'None' else 'no loop API':12s} median {row['train_s_median']:7.2f} s  overhead {row['overhead_pct']:+6.2f} %  finish {row['finish_s_median']:.2f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "seconds": seconds, "finish": finish, "summary": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
