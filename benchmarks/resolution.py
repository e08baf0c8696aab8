"""How many paired seeds a benchmark protocol needs to resolve a method's difference from random.

    .venv/bin/python benchmarks/resolution.py runs/bench-a runs/bench-b ... [--target 0.5] [--methods rl-selector]

Reads the stored cells of one or more ``rlselector bench`` results directories of the same protocol
(data, evaluation model and recipe), pairs every method's eval cell with random's of the same ratio,
seed and evaluation model (the same evaluation seed), and per ratio reports:

- the standard deviation of the paired differences (method − random) over seeds, pooled over the
  methods (each method's own mean removed, so what a method gains is not counted as noise);
- the 95 % CI half-width that gives at the seeds measured, and the paired seeds needed for a half-width
  ≤ ``--target`` points: the smallest n with t(0.975, n − 1) · sd / √n ≤ target;
- the seconds one seed of one comparison costs (the two subsets' training, wall, from the cells).

The standard deviation is estimated from few seeds: the seeds needed are an estimate of that order.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats


def cells(directories: list[Path]) -> list[dict]:
    found = {}
    for directory in directories:
        for path in sorted((directory / "cells").glob("*.json")):
            record = json.loads(path.read_text())
            found[record["key"]] = record
    return [r for r in found.values() if r.get("kind") == "eval" and r.get("top1") is not None]


def seeds_needed(sd: float, target: float, most: int = 200) -> int | None:
    for n in range(2, most + 1):
        if stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n) <= target:
            return n
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", type=Path)
    parser.add_argument("--target", type=float, default=0.5, help="wanted 95 %% CI half-width, points")
    parser.add_argument("--methods", nargs="+", help="pool only these methods (default: every method with random pairs)")
    args = parser.parse_args()
    records = cells(args.results)
    by = {(r["method"], r["ratio"], r["seed"], r["model"], r["width"]): r for r in records}
    differences: dict[float, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    seconds: dict[float, list[float]] = defaultdict(list)
    for (method, ratio, seed, model, width), record in by.items():
        base = by.get(("random", ratio, seed, model, width))
        if method == "random" or base is None or (args.methods and method not in args.methods):
            continue
        differences[ratio][method].append(record["top1"] - base["top1"])
        seconds[ratio].append(record["train_s"] + base["train_s"])
    print(f"results: {', '.join(map(str, args.results))}; evaluation {sorted({(r['model'], r['width'], r['epochs']) for r in records})}\n")
    print(f"| ratio | methods | seeds | sd of paired differences (pooled) | 95 % CI half-width at those seeds | seeds for ≤ {args.target:g} | training s per seed of one comparison (wall, from the cells) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for ratio in sorted(differences):
        groups = {m: np.asarray(v) for m, v in differences[ratio].items() if len(v) >= 2}
        if not groups:
            continue
        residual = np.concatenate([v - v.mean() for v in groups.values()])
        dof = sum(len(v) - 1 for v in groups.values())
        sd = math.sqrt(float((residual**2).sum()) / dof)
        n = int(np.median([len(v) for v in groups.values()]))
        half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
        needed = seeds_needed(sd, args.target)
        print(f"| {ratio:.0%} | {', '.join(sorted(groups))} | {n} | {sd:.2f} | ±{half:.2f} | {needed if needed else '> 200'} | "
              f"{np.median(seconds[ratio]):.0f} |")


if __name__ == "__main__":
    main()
