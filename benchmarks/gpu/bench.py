"""GPU benchmark of the training loop (run through ``benchmarks/gpu/run.sh``; about 8 minutes on one H200).

On generated CIFAR-sized data (50,000 + 10,000 images, 3x32x32, 10 classes: a colour per class
under uniform noise, so the network learns), with ResNet-18 width 64:

1. images/s of ``train()`` in float32, in bf16 autocast + channels-last (with and without
   augmentation, and with torch.compile), beside a bare bf16 + channels-last loop of the same model
   in the same process (data already on the GPU, no augmentation, fused SGD: an upper bound). The
   goal: ``train()`` with the bare loop's work (no augmentation) within 5 % of it. Each figure is the
   median images/s of the epochs after the first (which pays cuDNN's autotuning and compilation);
   peak GPU memory is ``torch.cuda.max_memory_allocated`` of each run.
2. RL-Selector's cost ratio at that size: the wall time of ``rlselector select --method rl-selector
   --recipe paper -p epochs=E`` over that of ``rlselector train`` of the same network, batch and
   epochs (both float32 on the GPU, each a fresh process). The goal: at most 1.05.

Writes ``gpu_bench.md`` (the tables, for BENCHMARKS.md) and ``gpu_bench.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from rlselector import load_dataset  # noqa: E402
from rlselector.train import TrainConfig, build_for, train  # noqa: E402


def generate(path: Path) -> None:
    """CIFAR-sized uint8 images: class k has its own mean colour, plus noise over the full range."""
    if path.exists():
        return
    rng = np.random.default_rng(0)
    colours = rng.integers(40, 216, (10, 3))

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n)
        noise = rng.integers(-40, 40, (n, 3, 32, 32))
        return np.clip(colours[labels][:, :, None, None] + noise, 0, 255).astype(np.uint8), labels.astype(np.int64)

    x, y = split(50_000)
    x_test, y_test = split(10_000)
    np.savez(path, x=x, y=y, x_test=x_test, y_test=y_test)


def steady_rate(rates: list[float]) -> float:
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def bare_loop(dataset, epochs: int, batch_size: int) -> dict:
    """The reference: bf16 autocast + channels-last, the uint8 images already on the GPU, no augmentation."""
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    images, labels = dataset.train.images.to(device), dataset.train.labels.to(device)
    mean, std = (torch.tensor(v, device=device).view(1, -1, 1, 1) for v in dataset.channel_stats)
    model = build_for(dataset, "resnet18", 64, 0).to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, fused=True)
    torch.cuda.reset_peak_memory_stats()
    rates = []
    for epoch in range(epochs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        for index in torch.randperm(len(images), device=device).split(batch_size):
            x = ((images[index].float() / 255.0 - mean) / std).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        torch.cuda.synchronize()
        rates.append(len(images) / (time.perf_counter() - start))
    return {"rates": rates, "images_per_s": steady_rate(rates), "peak_gib": torch.cuda.max_memory_allocated() / 2**30}


def loop_run(dataset, epochs: int, batch_size: int, *, augment: bool, **runtime) -> dict:
    model = build_for(dataset, "resnet18", 64, 0)
    torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.1, seed=0, augment=augment)
    started = time.perf_counter()
    result = train(model, dataset, config, progress=False, evaluate_test=True, device="cuda", **runtime)
    rates = [record["images_per_s"] for record in result.history]
    return {"rates": rates, "images_per_s": steady_rate(rates), "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "top1": result.top1, "wall_s": time.perf_counter() - started, "final_loss": result.history[-1]["train_loss"]}


def cli(work: Path, *args: str) -> dict:
    """Wall time of one ``rlselector`` command in a fresh process (what a user waits for)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rlselector.cli", *args], env=env, capture_output=True, text=True, cwd=work)
    seconds = time.perf_counter() - started
    tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
    return {"seconds": seconds, "ok": done.returncode == 0, "tail": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where gpu_bench.md and gpu_bench.json go")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rlselector-gpu-bench"), help="data and run directories")
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each throughput run")
    parser.add_argument("--batch-size", type=int, default=512, help="batch of the throughput runs")
    parser.add_argument("--cost-epochs", type=int, default=5, help="epochs of the select/train cost runs (batch 256, the paper recipe's)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: compile, cost")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    data_path = args.work / "synthetic-cifar.npz"
    generate(data_path)
    dataset = load_dataset(f"npz:{data_path}")
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
                    "python": platform.python_version(), "epochs": args.epochs, "batch_size": args.batch_size}

    def log(name: str, row: dict) -> None:
        report[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k != "tail"}), flush=True)
        (args.out / "gpu_bench.json").write_text(json.dumps(report, indent=2))

    log("bare_bf16_channels_last", bare_loop(dataset, args.epochs, args.batch_size))
    log("train_fp32", loop_run(dataset, args.epochs, args.batch_size, augment=True))
    log("train_bf16_channels_last", loop_run(dataset, args.epochs, args.batch_size, augment=True, amp="bf16", channels_last=True))
    log("train_bf16_channels_last_no_augment",
        loop_run(dataset, args.epochs, args.batch_size, augment=False, amp="bf16", channels_last=True))
    if "compile" not in skip:
        log("train_bf16_channels_last_compile_no_augment",
            loop_run(dataset, args.epochs, args.batch_size, augment=False, amp="bf16", channels_last=True, compile=True))
    if "cost" not in skip:
        for run in ("train", "select", "cache"):  # a rerun starts these over
            shutil.rmtree(args.work / run, ignore_errors=True)
        common = ["--data", f"npz:{data_path}", "--seed", "0", "--quiet"]
        log("cli_train", cli(args.work, "train", *common, "--model", "resnet18", "--width", "64", "--epochs", str(args.cost_epochs),
                             "--batch-size", "256", "--lr", "0.1", "--weight-decay", "5e-4", "--out", str(args.work / "train")))
        log("cli_select_rl", cli(args.work, "select", *common, "--method", "rl-selector", "--ratio", "0.5", "--recipe", "paper",
                                 "-p", f"epochs={args.cost_epochs}", "--out", str(args.work / "select"),
                                 "--cache-dir", str(args.work / "cache")))
    write_markdown(report, args)


def write_markdown(report: dict, args) -> None:
    bare = report["bare_bf16_channels_last"]["images_per_s"]
    lines = [
        f"GPU: {report['gpu']}, torch {report['torch']} (CUDA {report['cuda']}), Python {report['python']}; "
        f"ResNet-18 width 64, 3x32x32 generated data (50,000 training images), batch {report['batch_size']}, "
        f"{report['epochs']} epochs per run, images/s = median of epochs 2-{report['epochs']}.",
        "",
        "| run | images/s | vs bare loop | peak GPU memory GiB | final train loss |",
        "|---|---:|---:|---:|---:|",
    ]
    names = {
        "bare_bf16_channels_last": "bare loop: bf16 + channels-last, data on the GPU, no augmentation",
        "train_fp32": "`train()` float32, augmentation",
        "train_bf16_channels_last": "`train()` bf16 + channels-last, augmentation",
        "train_bf16_channels_last_no_augment": "`train()` bf16 + channels-last, no augmentation (the bare loop's work; goal ≥ 0.95)",
        "train_bf16_channels_last_compile_no_augment": "`train()` bf16 + channels-last + compile, no augmentation",
    }
    for key, name in names.items():
        if key in report:
            row = report[key]
            loss = f"{row['final_loss']:.3f}" if "final_loss" in row else ""
            lines.append(f"| {name} | {row['images_per_s']:,.0f} | {row['images_per_s'] / bare:.3f} | {row['peak_gib']:.2f} | {loss} |")
    if "cli_train" in report and "cli_select_rl" in report:
        plain, rl = report["cli_train"], report["cli_select_rl"]
        ratio = f"**{rl['seconds'] / plain['seconds']:.3f}** (goal ≤ 1.05)" if plain["ok"] and rl["ok"] else "failed: " + " / ".join(
            (rl if not rl["ok"] else plain)["tail"][-2:])
        lines += [
            "",
            f"RL-Selector cost at that size ({args.cost_epochs} epochs, batch 256, float32, each command a fresh process, wall time):",
            "",
            "| command | seconds | ratio |",
            "|---|---:|---:|",
            f"| `rlselector train --model resnet18 --width 64 --epochs {args.cost_epochs} --batch-size 256` | {plain['seconds']:.1f} | |",
            f"| `rlselector select --method rl-selector --recipe paper -p epochs={args.cost_epochs}` | {rl['seconds']:.1f} | {ratio} |",
        ]
    (args.out / "gpu_bench.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
