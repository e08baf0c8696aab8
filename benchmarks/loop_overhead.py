"""Overhead of the loop API (rlselector.SelectionLoop) inside a user's own training loop.

The same plain PyTorch loop (ResNet-18 width 16, SGD, batch 128, Fashion-MNIST) runs without the
loop API and with it, for a dynamics-based baseline (EL2N: per-sample loss, margins and the
logits+features stand-ins of every epoch recorded), a features-based one (herding: every sample's
latest features) and RL-Selector (the agent acting from epoch 2, the ε-cover after each epoch).
The configurations alternate within each round (none, el2n, herding, rl-selector, none, ...) so
machine load hits all alike; each run trains a fresh network for ``--epochs`` epochs. Two figures:
the wall time of a run's epochs against the run without the loop API (paired by round; on a shared
machine its noise can exceed the overhead), and the seconds spent inside ``observe`` and
``end_epoch`` as a share of the rest of the same run (robust to load: both halves see the same
machine). ``finish`` (the method's decision after training) is reported apart.

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


def run(dataset, method: str | None, epochs: int, batch_size: int, seed: int) -> tuple[float, float, float]:
    """(seconds of the training epochs, of them inside the loop API, of finish) of one run of the user's loop."""
    model = build_for(dataset, "resnet18", 16, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    mean, std = dataset.channel_stats
    extra = {"epochs": epochs} if method == "rl-selector" else {}
    loop = None if method is None else SelectionLoop(dataset.train.labels, 0.5, method, seed=seed, progress=False, **extra)
    inside = 0.0
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
                called = time.perf_counter()
                loop.observe(index, features=features, logits=logits, labels=labels)
                inside += time.perf_counter() - called
        if loop is not None:
            called = time.perf_counter()
            loop.end_epoch(lr=optimizer.param_groups[0]["lr"])
            inside += time.perf_counter() - called
    trained = time.perf_counter() - start
    if loop is None:
        return trained, 0.0, 0.0
    start = time.perf_counter()
    loop.finish()
    return trained, inside, time.perf_counter() - start


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
    runs: dict[str, list[tuple[float, float, float]]] = {str(m): [] for m in METHODS}
    for round_index in range(args.rounds):
        for method in METHODS:
            trained, inside, finished = run(dataset, method, args.epochs, args.batch_size, round_index)
            runs[str(method)].append((trained, inside, finished))
            print(f"round {round_index + 1}: {method or 'no loop API':12s} {trained:7.2f} s training ({inside:6.2f} s in the loop API), "
                  f"{finished:6.2f} s finish", flush=True)
    rows = {}
    for method, values in runs.items():
        wall = [trained / base - 1 for (trained, _, _), (base, _, _) in zip(values, runs["None"])]
        rows[method] = {
            "wall_overhead_pct_median": round(100 * statistics.median(wall), 2),
            "inside_api_pct_median": round(100 * statistics.median(inside / (trained - inside) for trained, inside, _ in values), 2),
            "finish_s_median": round(statistics.median(finished for _, _, finished in values), 3),
        }
    print(f"\n{args.samples} images, {args.epochs} epochs, {args.threads} thread(s), {platform.processor() or platform.machine()}")
    for method, row in rows.items():
        print(f"{method if method != 'None' else 'no loop API':12s} wall {row['wall_overhead_pct_median']:+6.2f} %  "
              f"inside the API {row['inside_api_pct_median']:5.2f} %  finish {row['finish_s_median']:.2f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "runs": runs, "summary": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
