"""Selection time of every registered method on one dataset, the proxy stage reported once, apart.

The proxy (the default one for the dataset) trains first and is cached; every method that reads
training dynamics or proxy features then reuses it, so its row shows only the method's own time.
Methods that train their own network (rl-selector, cover-static: the ``--recipe`` target recipe;
prototypes: its self-supervised encoder) include that training in their own time.

    .venv/bin/python benchmarks/selection_time.py --data fashion-mnist --ratio 0.5 --recipe cpu
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from rlselector import list_methods, load_dataset, select
from rlselector.selection.proxy import default_proxy_config, run_proxy

TARGET_TRAINING = {"rl-selector", "cover-static"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=None, help="class-stratified training subset")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--recipe", default="cpu", help="target recipe of rl-selector and cover-static")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--methods", default="", help="comma-separated subset (default: every registered method)")
    parser.add_argument("--cache-dir", default=None, help="proxy cache (default: a fresh temporary directory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = load_dataset(args.data, limit=args.limit, seed=0)
    names = [m.name for m in list_methods()] if not args.methods else args.methods.split(",")
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="rlselector-proxy-"))

    proxy = default_proxy_config(dataset)
    _, proxy_seconds, cached = run_proxy(dataset, proxy, seed=0, cache_dir=cache, progress=True)
    rows = []
    for name in names:
        params = {"recipe": args.recipe} if name in TARGET_TRAINING else {}
        start = time.perf_counter()
        selection = select(dataset, name, args.ratio, 0, cache_dir=cache, progress=True, **params)
        wall = time.perf_counter() - start
        rows.append((name, selection.manifest["timings"]["selection_s"], wall, selection.manifest["timings"]["proxy_s"]))
        print(f"{name}: {rows[-1][1]:.1f} s", flush=True)

    print()
    print(f"{dataset.name}: N = {len(dataset):,}, ratio {args.ratio}, seed 0; {platform.machine()}, "
          f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}")
    print(f"proxy stage (once, shared): {proxy.model} width {proxy.width}, {proxy.recipe.epochs} epochs: "
          f"{proxy_seconds:.1f} s{' (cached)' if cached else ''}")
    print()
    print("| method | selection s (own) | wall s |")
    print("|---|---:|---:|")
    for name, own, wall, _ in rows:
        print(f"| {name} | {own:.1f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
