"""How much of a paired difference is the evaluation itself? The floor under every comparison of selections.

    .venv/bin/python benchmarks/evaluation_noise.py --out runs/eval-noise --protocols 5x8 15x8 --seeds 0 1 2 3 4

One kept set (a seeded random ``--ratio`` of the ``cpu-full`` grid's 8,000 Fashion-MNIST images) and its
twin (the same set with ``--swap`` kept samples exchanged for unkept ones of the same class) each train
the ``cpu`` recipe's evaluation network under every protocol (EPOCHSxWIDTH: evaluation epochs and
ResNet-18 width) with the same evaluation seeds, paired. The two sets are, for any purpose of data
selection, the same selection, so what separates their final-epoch test top-1 is the evaluation's own
scatter: a paired comparison of two real selections cannot resolve less than it. Per protocol:

- the sd of top-1 over evaluation seeds (one set: what a cell's training alone scatters);
- the sd of the paired differences set − twin, and the paired seeds that sd needs for a 95 % CI
  half-width ≤ ``--target`` (``resolution.py``'s rule: smallest n with t(0.975, n − 1) · sd / √n ≤ target);
- CPU seconds of one training (the process's own, one thread), so the cheapest protocol that can
  resolve ``--target`` is the one with the fewest CPU seconds × seeds.

Resumable: every training's result is stored under ``--out`` and read back on a rerun.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from resolution import seeds_needed  # noqa: E402
from rl_selector_bench import machine, stored_evaluation  # noqa: E402

from rlselector import load_dataset, select  # noqa: E402
from rlselector.bench.stats import paired_difference  # noqa: E402


def twin_of(kept: np.ndarray, labels: np.ndarray, swap: int, seed: int) -> np.ndarray:
    """``kept`` with ``swap`` members exchanged for unkept samples of the same class (sorted indices)."""
    rng = np.random.default_rng(seed)
    was_kept = np.zeros(len(labels), dtype=bool)
    was_kept[kept] = True
    kept_mask = was_kept.copy()
    for leaving in rng.choice(kept, size=swap, replace=False):
        candidates = np.flatnonzero(~was_kept & ~kept_mask & (labels == labels[leaving]))  # a sample that left stays out
        kept_mask[leaving], kept_mask[rng.choice(candidates)] = False, True
    return np.flatnonzero(kept_mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=8000, help="Fashion-MNIST training images (the cpu-full grid's)")
    parser.add_argument("--ratio", type=float, default=0.5, help="share kept by the random set")
    parser.add_argument("--swap", type=int, default=4, help="kept samples the twin exchanges (the cpu-full read-outs differed by 1-8)")
    parser.add_argument("--protocols", nargs="+", default=["5x8", "15x8"], metavar="EPOCHSxWIDTH")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="evaluation seeds")
    parser.add_argument("--target", type=float, default=0.5, help="wanted 95 %% CI half-width, points")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    protocols = [tuple(int(part) for part in p.split("x")) for p in args.protocols]
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    kept = np.sort(select(data, "random", args.ratio, 0, progress=False).indices)
    sets = {"set": kept, "twin": twin_of(kept, np.asarray(data.train.labels), args.swap, seed=0)}
    rows = []
    for epochs, width in protocols:
        top1: dict[str, dict[int, float]] = {"set": {}, "twin": {}}
        cpu = []
        for seed in args.seeds:
            for name, indices in sets.items():
                record = stored_evaluation(args.out / f"e{epochs}-w{width}" / f"{name}-s{seed}.json", data.subset(indices), epochs, seed,
                                           width=width)
                top1[name][seed] = record["test"]
                cpu.append(record["cpu_s"])
                print(f"{epochs} epochs, width {width}, seed {seed}, {name}: top-1 {record['test']:.2f}, {record['cpu_s']:.0f} CPU s", flush=True)
        pair = paired_difference(top1["set"], top1["twin"])
        sd_run = float(np.std(list(top1["set"].values()), ddof=1))
        rows.append((epochs, width, float(np.mean(list(top1["set"].values()))), sd_run, pair,
                     seeds_needed(pair.std, args.target), float(np.median(cpu))))
    print(f"\nfashion-mnist {len(data):,} training images, a random {args.ratio:.0%} ({len(kept):,}) and its twin with {args.swap} "
          f"samples swapped; evaluation ResNet-18 (cpu recipe), final-epoch test top-1 %, evaluation seeds {args.seeds}; {machine()}\n")
    print(f"| protocol | mean top-1 | sd over seeds | set − twin per seed | sd of paired differences | paired seeds for ±{args.target} "
          f"| CPU s per training | CPU s of one comparison at those seeds |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for epochs, width, mean, sd_run, pair, needed, cpu in rows:
        cost = "—" if needed is None else f"{2 * needed * cpu:,.0f}"
        print(f"| {epochs} epochs, width {width} | {mean:.2f} | {sd_run:.2f} | {' / '.join(f'{d:+.2f}' for d in pair.differences)} "
              f"| {pair.std:.2f} | {needed if needed is not None else '> 200'} | {cpu:.0f} | {cost} |")
    print(f"\n95 % CI half-width of set − twin at the {len(args.seeds)} seeds measured: "
          + ", ".join(f"{e}x{w} ±{pair.high - pair.mean:.2f}" for e, w, _, _, pair, _, _ in rows))


if __name__ == "__main__":
    main()
