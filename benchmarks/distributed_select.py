"""Selection under torchrun with 2 gloo processes against 1 process, on this machine's CPUs.

    .venv/bin/python benchmarks/distributed_select.py --limit 4000 --epochs 3

Each run is a fresh ``rlselector select`` process (one torch thread per process); wall seconds, the CPU
seconds of the whole process tree, and the kept-set overlap of the two runs (the 2-rank run shards each
epoch's batches across the ranks, so it trains on other batches and keeps another, equally valid set).
On 2 cores, 2 ranks are expected to be no faster: the point is that it runs, and scales with more.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from rlselector.selection.format import load_selection

METHODS = {
    "rl-selector": lambda epochs: ["--method", "rl-selector", "--recipe", "cpu", "-p", f"epochs={epochs}"],
    "el2n": lambda epochs: ["--method", "el2n", "-p", "seeds=1"],  # its proxy: the default one for the data
}


def run(command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, children included) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--methods", nargs="+", default=["rl-selector"], choices=list(METHODS), help="el2n adds the default proxy (ResNet-18 w16, 10 epochs at ≤ 10k images)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.methods:
            common = ["select", "--data", "fashion-mnist", "--limit", str(args.limit), "--ratio", "0.5", "--seed", "0",
                      "--device", "cpu", "--threads", "1", "--quiet", *METHODS[method](args.epochs)]
            one, two = Path(tmp, f"{method}-1"), Path(tmp, f"{method}-2")
            wall_1, cpu_1 = run([sys.executable, "-m", "rlselector.cli", *common, "--out", str(one)])
            wall_2, cpu_2 = run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29561",
                                 "-m", "rlselector.cli", *common, "--out", str(two)])
            a, b = load_selection(one), load_selection(two)
            overlap = len(np.intersect1d(a.indices, b.indices)) / len(np.union1d(a.indices, b.indices))
            rows.append({"method": method, "wall_1": wall_1, "cpu_1": cpu_1, "wall_2": wall_2, "cpu_2": cpu_2, "jaccard": overlap,
                         "kept": (a.manifest["n_kept"], b.manifest["n_kept"])})
            print(json.dumps(rows[-1]), flush=True)
    load = os.getloadavg()[0]
    print(f"\nfashion-mnist {args.limit:,} images, ratio 0.5, seed 0; {platform.machine()}, {os.cpu_count()} cores, "
          f"1-minute load at the end {load:.2f}\n")
    print("| method | 1 process: wall s / CPU s | 2 gloo ranks: wall s / CPU s | wall ratio | kept (1 / 2) | Jaccard of the kept sets |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['method']} | {r['wall_1']:.0f} / {r['cpu_1']:.0f} | {r['wall_2']:.0f} / {r['cpu_2']:.0f} | "
              f"{r['wall_2'] / r['wall_1']:.2f} | {r['kept'][0]} / {r['kept'][1]} | {r['jaccard']:.2f} |")


if __name__ == "__main__":
    main()
