"""More selection seeds or more evaluation seeds? How the variance of a paired comparison splits.

    .venv/bin/python benchmarks/eval_seeds.py runs/noise --out runs/eval-seeds --method rl-selector --eval-seeds 100 101 102 103

Takes the stored ``rlselector bench`` cells of one protocol (Fashion-MNIST 8,000, the ``cpu`` recipe's
evaluation network at width 8 for 5 epochs: the ``cpu-full`` grid's), and trains every selection of
``--method`` and of random again with each of ``--eval-seeds`` (initial weights and augmentation
stream; the same seeds for every selection, so each (selection seed, evaluation seed) is a pair).
For D[s, e] = method − random at selection seed s and evaluation seed e:

- within: the variance of D over evaluation seeds at a fixed selection seed (the evaluation's noise
  in a paired difference), pooled over selection seeds;
- selection: var over s of the mean over e, less within / k: what the selections themselves add.

The 95 % CI half-width of a protocol with n selection seeds and k evaluation seeds each is then
t(0.975, n − 1) · √((selection + within / k) / n); the table gives the cheapest (n, k) for ``--target``
from the measured CPU seconds of a selection and of an evaluation. First, each selection's own grid
evaluation is trained again (evaluation seed = selection seed) to check that the protocol is the grid's.
Resumable: every training is stored under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

sys.path.insert(0, str(Path(__file__).parent))
from rl_selector_bench import machine, stored_evaluation  # noqa: E402

from rlselector import load_dataset, load_selection  # noqa: E402

EPOCHS, WIDTH = 5, 8
"""The ``cpu-full`` grid's evaluation: the ``cpu`` recipe's ResNet-18 at width 8, 5 epochs."""


def grid_cells(results: Path, method: str, ratio: float) -> dict[tuple[str, int], dict]:
    cells = {}
    for path in sorted((results / "cells").glob("*.json")):
        cell = json.loads(path.read_text())
        if cell.get("kind") == "eval" and cell["method"] in (method, "random") and cell["ratio"] == ratio \
                and cell.get("noise", {}).get("rate", 0.0) == 0.0 and cell["model"] == "resnet18" and cell["width"] == WIDTH:
            cells[(cell["method"], cell["seed"])] = cell
    return cells


def selection_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments naming the stored selections and the evaluation seeds (shared with ``precise_bn.py``)."""
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--method", default="rl-selector")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[100, 101, 102, 103])


def paired_selections(results: Path, method: str, ratio: float):
    """(the grid's dataset, its eval cells of ``method`` and random, the seeds where both are stored)."""
    data = load_dataset("fashion-mnist", limit=8000, seed=0)
    cells = grid_cells(results, method, ratio)
    seeds = sorted(s for (m, s) in cells if m == method and ("random", s) in cells)
    if len(seeds) < 2:
        raise SystemExit(f"{results}: needs {method} and random eval cells at {ratio} on ≥ 2 seeds, found {seeds}")
    return data, cells, seeds


def half_width(selection: float, within: float, n: int, k: int) -> float:
    return stats.t.ppf(0.975, n - 1) * math.sqrt(max(selection, 0.0) + within / k) / math.sqrt(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    selection_arguments(parser)
    parser.add_argument("--target", type=float, default=0.5, help="wanted 95 %% CI half-width, points")
    parser.add_argument("--threads", type=int, default=1, help="torch threads: the grid's (its cells ran with 1; another count trains other numbers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, cells, seeds = paired_selections(args.results, args.method, args.ratio)
    scores: dict[tuple[str, int, int], float] = {}
    cpu: dict[str, list[float]] = {"evaluation": [], "selection": []}
    for s in seeds:
        for method in (args.method, "random"):
            cell = cells[(method, s)]
            subset = load_selection(args.results / cell["selection"]["dir"]).subset(data)
            own = stored_evaluation(args.out / f"{method}-s{s}-e{s}.json", subset, EPOCHS, s, width=WIDTH)
            print(f"{method} seed {s}: grid {cell['top1']:.2f}, trained again {own['test']:.2f}", flush=True)
            if method != "random":
                cpu["selection"].append(cell["selection"]["cost_s"])
            for e in args.eval_seeds:
                record = stored_evaluation(args.out / f"{method}-s{s}-e{e}.json", subset, EPOCHS, e, width=WIDTH)
                scores[(method, s, e)] = record["test"]
                cpu["evaluation"].append(record["cpu_s"])
                print(f"  evaluation seed {e}: {record['test']:.2f}", flush=True)
    d = np.array([[scores[(args.method, s, e)] - scores[("random", s, e)] for e in args.eval_seeds] for s in seeds])
    n, k = d.shape
    within = float(d.var(axis=1, ddof=1).mean())
    selection = float(d.mean(axis=1).var(ddof=1)) - within / k
    print(f"\n{args.method} − random at {args.ratio:.0%}, {args.results}: {n} selection seeds × {k} evaluation seeds; {machine()}\n")
    print("| selection seed | " + " | ".join(f"eval {e}" for e in args.eval_seeds) + " | mean |")
    print("|---:|" + "---:|" * (k + 1))
    for s, row in zip(seeds, d):
        print(f"| {s} | " + " | ".join(f"{v:+.2f}" for v in row) + f" | {row.mean():+.2f} |")
    print(f"\nmean {d.mean():+.2f}; within (evaluation) sd {math.sqrt(within):.2f}; selection sd "
          f"{math.sqrt(max(selection, 0.0)):.2f} (variance {selection:+.3f}{', < 0: none measured' if selection < 0 else ''})")
    evaluation_s, selection_s = float(np.median(cpu["evaluation"])), float(np.median(cpu["selection"]))
    print(f"CPU s: an evaluation {evaluation_s:.0f}, a selection of {args.method} {selection_s:.0f} (the grid's record, wall)\n")
    print(f"| evaluation seeds per selection k | selection seeds n for ±{args.target:g} | CPU h of one (ratio, method) comparison |")
    print("|---:|---:|---:|")
    for kk in (1, 2, 4, 8):
        nn = next((m for m in range(2, 401) if half_width(selection, within, m, kk) <= args.target), None)
        hours = None if nn is None else nn * (selection_s + 2 * kk * evaluation_s) / 3600
        print(f"| {kk} | {nn or '> 400'} | {'—' if hours is None else f'{hours:.1f}'} |")


if __name__ == "__main__":
    main()
