"""One method's paired difference from each of several others, per ratio, over the shared seeds.

    .venv/bin/python benchmarks/paired_against.py runs/bench-a runs/bench-b ... --method rl-selector --against random forgetting cgscore

Reads the stored eval cells of ``rlselector bench`` results directories, pairs the method's cell with
each other method's of the same ratio, seed and evaluation model (every method's subset of a (ratio,
seed) trains with the same evaluation seed), and prints per ratio the mean difference in final-epoch
test top-1 with its 95 % CI and p from a paired t-test over the seeds (``rlselector.bench.stats``,
the report's own statistics). ``rlselector report`` gives the differences from random; this gives
them against any method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from resolution import cells

from rlselector.bench.stats import paired_difference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--method", default="rl-selector")
    parser.add_argument("--against", nargs="+", default=["random"])
    args = parser.parse_args()
    top1: dict[tuple[str, float], dict[tuple, float]] = {}
    for record in cells(args.directories):
        pair = (record["seed"], record["model"], record["width"])
        top1.setdefault((record["method"], record["ratio"]), {})[pair] = record["top1"]
    ratios = sorted({ratio for method, ratio in top1 if method == args.method})
    if not ratios:
        raise SystemExit(f"no eval cells of {args.method!r} in {', '.join(map(str, args.directories))}")
    print(f"{args.method} − each method, final-epoch test top-1 points: mean [95 % CI] (paired t p, seeds)\n")
    print("| against | " + " | ".join(f"{round(100 * r)} %" for r in ratios) + " |")
    print("|---|" + "---|" * len(ratios))
    for other in args.against:
        row = []
        for ratio in ratios:
            paired = paired_difference(top1[args.method, ratio], top1.get((other, ratio), {}))
            if paired is None:
                row.append("—")
            elif paired.low is None:
                row.append(f"{paired.mean:+.2f} (1 seed)")
            else:
                row.append(f"{paired.mean:+.2f} [{paired.low:+.2f}, {paired.high:+.2f}] (p {paired.p:.2f}, n {paired.n})")
        print(f"| {other} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
