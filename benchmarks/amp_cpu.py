"""bf16 autocast against float32 on the CPU: train() images/s, same model, data and threads.

ResNet-18 width 16 on a Fashion-MNIST stratified subset, one epoch per run, ``device="cpu"``; the
two precisions alternate within each round (fp32, bf16, fp32, ...) so machine load hits both alike.
The final train loss of each run is printed too (bf16 rounds the activations, so it differs).

    .venv/bin/python benchmarks/amp_cpu.py --samples 1000 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import platform
import statistics

import torch

from rlselector import load_dataset
from rlselector.train import TrainConfig, build_for, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion-mnist", limit=args.samples, seed=0)
    config = TrainConfig(epochs=1, batch_size=args.batch_size, seed=0)
    train(build_for(dataset, "resnet18", 16, 0), dataset.subset(range(512)), config, progress=False, evaluate_test=False,
          device="cpu", amp="bf16")  # warm-up: one-off kernel set-up of both paths
    rates: dict[str, list[float]] = {"off": [], "bf16": []}
    for round_index in range(args.rounds):
        for amp in rates:
            result = train(build_for(dataset, "resnet18", 16, round_index), dataset, config, progress=False, evaluate_test=False,
                           device="cpu", amp=amp)
            rates[amp].append(result.images_per_second)
            print(f"round {round_index + 1} amp={amp}: {result.images_per_second:.0f} img/s, train loss {result.history[-1]['train_loss']:.4f}",
                  flush=True)
    fp32, bf16 = statistics.median(rates["off"]), statistics.median(rates["bf16"])
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, torch {torch.__version__}")
    print(f"| precision | images/s (median of {args.rounds}) |")
    print("|---|---:|")
    print(f"| float32 | {fp32:.0f} |")
    print(f"| bf16 autocast | {bf16:.0f} |")
    print(f"| bf16 / float32 | {bf16 / fp32:.2f} |")


if __name__ == "__main__":
    main()
