"""Peak memory of the geometry methods (k-center, D2, herding): linear in N, never an N × N matrix.

Each (method, N) runs in a fresh subprocess (one thread) on seeded random features (N × 512 float32,
10 balanced classes) at ratio 0.5, through the public ``select()``. Two measures:

- ``traced``: the peak of Python/numpy allocations during ``select()`` (tracemalloc; numpy reports its
  buffers to it). The methods use numpy and scipy only, so this is their whole working memory; it
  includes select()'s own input check (an N × d bool mask) and the method's centred copy of the features.
- ``Δ max RSS``: growth of the process's peak resident memory across ``select()`` (getrusage), which
  also sees allocations tracemalloc cannot (BLAS buffers, C extensions).

The input features themselves (N × 512 × 4 bytes) are allocated before the measurement. A dense
N × N float64 distance matrix is shown for scale.

    .venv/bin/python benchmarks/memory_geometry.py                 # 15k, 30k, 60k rows (minutes)
    .venv/bin/python benchmarks/memory_geometry.py --sizes 2000 4000 --methods kcenter
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

CHILD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
METHODS = ("kcenter", "d2", "herding")
PARAMS = {"kcenter": {}, "d2": {"difficulty": "uniform"}, "herding": {}}
"""D2 runs on features alone (uniform difficulty): the proxy's difficulty adds only an (N,) vector."""


def child(method: str, n: int, dim: int, ratio: float, seed: int) -> dict:
    import tracemalloc

    import numpy as np
    import torch

    torch.set_num_threads(1)
    from rlselector import select
    from rlselector.data.base import make_dataset

    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, dim), dtype=np.float32)
    labels = np.arange(n) % 10
    dataset = make_dataset(
        "random", torch.zeros((n, 1, 1, 1), dtype=torch.uint8), labels, None, None,
        [str(k) for k in range(10)], source="benchmark", train_where="random features",
    )
    # warm-up outside the measurement: module imports (every method registers on first use) and the
    # dataset's cached properties are one-off costs, not the method's working memory
    from rlselector.api import list_methods

    list_methods()
    _ = dataset.fingerprint, dataset.class_counts
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    started = time.perf_counter()
    selection = select(dataset, method=method, ratio=ratio, seed=seed, features=features, progress=False, **PARAMS[method])
    seconds = time.perf_counter() - started
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "method": method, "n": n, "dim": dim, "kept": int(selection.manifest["n_kept"]),
        "traced_bytes": traced, "rss_delta_bytes": (rss_after - rss_before) * 1024, "seconds": seconds,
        "features_bytes": features.nbytes,
    }


def run_child(method: str, n: int, dim: int, ratio: float, seed: int) -> dict:
    command = [sys.executable, __file__, "--child", method, str(n), "--dim", str(dim), "--ratio", str(ratio), "--seed", str(seed)]
    out = subprocess.run(command, env={**os.environ, **CHILD_ENV}, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    mb = 1024**2
    lines = [
        "| method | N | peak traced (MB) | traced / row (bytes) | Δ max RSS (MB) | features (MB) | time (s) | dense N×N float64 (GB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['n']:,} | {r['traced_bytes'] / mb:,.1f} | {r['traced_bytes'] / r['n']:,.0f} | "
            f"{r['rss_delta_bytes'] / mb:,.1f} | {r['features_bytes'] / mb:,.1f} | {r['seconds']:,.1f} | {r['n'] ** 2 * 8 / 1024**3:,.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[15_000, 30_000, 60_000])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.dim, args.ratio, args.seed)))
        return
    rows = []
    for method in args.methods:
        for n in args.sizes:
            rows.append(run_child(method, n, args.dim, args.ratio, args.seed))
            r = rows[-1]
            print(f"{method} N={n}: traced {r['traced_bytes'] / 1024**2:.1f} MB, {r['seconds']:.1f} s", file=sys.stderr, flush=True)
    print(f"{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, one thread; "
          f"features {args.dim}-d float32, ratio {args.ratio}, seed {args.seed}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
