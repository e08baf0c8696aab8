"""RL-Selector benchmarks (issue: cost, cover scaling, redundancy, quality and convergence).

Each sub-command prints a Markdown table and the machine; BENCHMARKS.md records them with the command.

    .venv/bin/python benchmarks/rl_selector_bench.py cost --limit 10000 --epochs 3
    .venv/bin/python benchmarks/rl_selector_bench.py cover --sizes 6000 60000 --dims 64 512
    .venv/bin/python benchmarks/rl_selector_bench.py refresh --samples 60000 --dim 128
    .venv/bin/python benchmarks/rl_selector_bench.py redundancy --limit 10000
    .venv/bin/python benchmarks/rl_selector_bench.py quality --limit 10000 --ratios 0.3 0.5 0.7 --seeds 0 1 2
    .venv/bin/python benchmarks/rl_selector_bench.py convergence --limit 10000 --ratios 0.3 0.5 0.7 0.9
    .venv/bin/python benchmarks/rl_selector_bench.py transfer --limit 3000 --source 0.5 --ratios 0.3 0.7

``cost``: CPU time (one torch thread, so contention from other jobs does not count) of an RL-Selector
selection divided by plain training of the same target network for the same epochs, in one process. ``cover``: time and peak memory of the ε-cover of
one class (subprocess per size, peak RSS growth and tracemalloc); ``refresh``: CPU time of one
per-epoch cover refresh of a whole dataset. ``redundancy``: 20 % of the images
duplicated with small noise, 1/1.2 of the set kept; share of duplicate pairs with a member pruned.
``quality``: evaluation ResNet-18 width 16 trained from scratch on each subset, final-epoch test
accuracy mean ± std over seeds, with each RL run's natural ratio (before band enforcement).
``transfer``: the transferable variant (``init_from``) fine-tuned from a finished selection to new
ratios, against a full selection at each ratio: CPU-time ratio, overlap of the kept sets, and the
evaluation network's accuracy on each subset.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from rlselector import load_dataset, select
from rlselector.bench.data import carve_validation
from rlselector.bench.stats import mean_std
from rlselector.data.base import Split
from rlselector.data.transforms import BatchTransform
from rlselector.io import atomic_write_json
from rlselector.recipes import get_recipe
from rlselector.selection.policies import BAND
from rlselector.train import train_model
from rlselector.train.evaluate import evaluate


def machine() -> str:
    return f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"


def cost(args) -> None:
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    named = get_recipe("cpu")
    recipe = replace(named.train, epochs=args.epochs)
    plain, rl = [], []
    for seed in range(args.rounds):
        # CPU seconds of this process (one torch thread): other jobs on a shared machine do not count
        start = time.process_time()
        train_model(data, model=named.model, width=named.width, config=replace(recipe, seed=seed), progress=False, evaluate_test=False)
        plain.append(time.process_time() - start)
        start = time.process_time()
        sel = select(data, "rl-selector", 0.5, seed, recipe="cpu", epochs=args.epochs, progress=False, **json.loads(args.params))
        rl.append(time.process_time() - start)
        t = sel.manifest["timings"]
        print(f"seed {seed}: plain {plain[-1]:.1f} CPU s, rl-selector {rl[-1]:.1f} CPU s (wall: agent {t['agent_s']:.1f}, cover {t['cover_s']:.1f}, target {t['target_s']:.1f}, decision {t.get('decision_s') or 0:.1f})", flush=True)
    print(f"\nfashion-mnist, {len(data):,} images, ResNet-18 w16, {args.epochs} epochs, RL-Selector parameters {args.params}; {machine()}\n")
    print("| run | plain training CPU s | RL-Selector selection CPU s | ratio |")
    print("|---|---:|---:|---:|")
    for seed, (p, r) in enumerate(zip(plain, rl)):
        print(f"| seed {seed} | {p:.1f} | {r:.1f} | {r / p:.3f} |")
    print(f"| **median** | {statistics.median(plain):.1f} | {statistics.median(rl):.1f} | **{statistics.median(rl) / statistics.median(plain):.3f}** |")


def cover_child(n: int, d: int) -> None:
    from rlselector.cover import cover, epsilon

    rng = np.random.default_rng(0)
    features = rng.standard_normal((n, d)).astype(np.float32)
    labels = np.zeros(n, dtype=np.int64)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    eps = epsilon(features, labels, rule="quantile", quantile=0.01)
    eps_cpu = time.process_time() - cpu_start
    cover(features, labels, eps)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    traced = tracemalloc.get_traced_memory()[1]
    rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    print(json.dumps({"n": n, "d": d, "seconds": seconds, "cpu_seconds": cpu_seconds, "epsilon_cpu_seconds": eps_cpu,
                      "traced_mb": traced / 2**20, "rss_mb": rss}))


def cover_scaling(args) -> None:
    rows = []
    for d in args.dims:
        for n in args.sizes:
            out = subprocess.run([sys.executable, __file__, "cover-child", str(n), str(d)], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\none class of n_k samples, random float32 features, ε = 1 % quantile then the degree of cover; {machine()}\n")
    print("| n_k | d | ε + cover CPU s (of which ε) | wall s | peak traced MB | Δ max RSS MB | dense n_k² float64 GB |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['d']} | {r['cpu_seconds']:.1f} ({r['epsilon_cpu_seconds']:.1f}) | {r['seconds']:.1f} | {r['traced_mb']:.1f} | {r['rss_mb']:.1f} | {8 * r['n'] ** 2 / 1e9:.1f} |")


def refresh(args) -> None:
    from rlselector.cover import cover, epsilon

    generator = torch.Generator().manual_seed(0)
    features = torch.randn(args.samples, args.dim, generator=generator)
    labels = torch.arange(args.samples) % args.classes
    start = time.process_time()
    eps = epsilon(features, labels, rule="quantile", quantile=0.01)
    eps_cpu = time.process_time() - start
    cover(features, labels, eps)
    total = time.process_time() - start
    print(f"\none cover refresh: {args.samples:,} random features × {args.dim}, {args.classes} equal classes, "
          f"ε = exact 1 % quantile then the degree; {machine()}\n")
    print("| samples | d | classes | ε CPU s | degree CPU s | refresh CPU s |")
    print("|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.samples:,} | {args.dim} | {args.classes} | {eps_cpu:.1f} | {total - eps_cpu:.1f} | {total:.1f} |")


def with_duplicates(data, share: float, seed: int, *, exact_share: float = 0.0):
    """The dataset plus copies of a seeded ``share`` of its images: the first ``exact_share`` of the
    copies exact, the rest with Gaussian noise (σ = 8 grey levels). Returns (dataset, pairs, exact):
    pairs (P, 2) of (original, copy) indices, exact (P,) bool."""
    rng = np.random.default_rng(seed)
    originals = np.sort(rng.choice(len(data), size=int(share * len(data)), replace=False))
    images = data.train.images[torch.from_numpy(originals)].float()
    noisy = (images + torch.from_numpy(rng.normal(0, 8.0, images.shape)).float()).round().clamp(0, 255).to(torch.uint8)
    exact = np.zeros(len(originals), dtype=bool)
    exact[rng.permutation(len(originals))[: int(round(exact_share * len(originals)))]] = True
    exact_rows = torch.from_numpy(exact).view(-1, *([1] * (noisy.dim() - 1)))
    copies = torch.where(exact_rows, data.train.images[torch.from_numpy(originals)], noisy)
    train = Split(torch.cat([data.train.images, copies]), torch.cat([data.train.labels, data.train.labels[torch.from_numpy(originals)]]))
    pairs = np.stack([originals, len(data) + np.arange(len(originals))], axis=1)
    name = f"{data.name}+dup{share}" + (f"x{exact_share}" if exact_share else "")
    return replace(data, name=name, train=train, source_ids=None, parent_indices=None), pairs, exact


COMPARED_RUNS = (
    ("rl-selector", "rl-selector", {"recipe": "cpu"}),
    ("rl-selector, no critic", "rl-selector", {"recipe": "cpu", "variant": "no-critic"}),
    ("rl-selector, no set-aware state and reward", "rl-selector", {"recipe": "cpu", "agent": {"set_state": False, "set_weight": 0.0}}),
    ("rl-selector, readout on eval features only", "rl-selector", {"recipe": "cpu", "readout_features": "eval"}),
    ("rl-selector, readout counting every image", "rl-selector", {"recipe": "cpu", "readout_input_within": None}),
    ("rl-selector, readout on the bank and the input", "rl-selector", {"recipe": "cpu", "readout_features": "bank+input"}),
    ("rl-selector, readout on the bank", "rl-selector", {"recipe": "cpu", "readout_features": "bank"}),
    ("rl-selector, sampled decision", "rl-selector", {"recipe": "cpu", "decision": "sample"}),
    ("rl-selector, threshold decision", "rl-selector", {"recipe": "cpu", "decision": "threshold"}),
    ("rl-selector, set-aware decision", "rl-selector", {"recipe": "cpu", "decision": "set-aware"}),
    ("cover-static", "cover-static", {"recipe": "cpu"}),
    ("cover-static, set-aware", "cover-static", {"recipe": "cpu", "set_aware": True}),
    ("random", "random", {}),
)
"""(row label, method, parameters) compared by the redundancy and quality benchmarks."""


def _chosen_runs(labels: list[str] | None) -> list[tuple[str, str, dict]]:
    runs = [run for run in COMPARED_RUNS if labels is None or run[0] in labels]
    unknown = set(labels or []) - {run[0] for run in COMPARED_RUNS}
    if unknown:
        raise SystemExit(f"unknown --runs {sorted(unknown)}; choose from {[run[0] for run in COMPARED_RUNS]}")
    return runs


def redundancy(args) -> None:
    base = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    data, pairs, exact = with_duplicates(base, 0.2, seed=0, exact_share=args.exact_share)
    ratio = 1 / 1.2
    rows = []
    extra = json.loads(args.params)
    for label, method, params in _chosen_runs(args.runs):
        if method == "rl-selector" and extra:
            params, label = _merged(params, extra), f"{label}, {args.params}"
        sel = select(data, method, ratio, 0, progress=False, cache_dir=args.cache, **params)
        kept = sel.mask
        member = ~kept[pairs[:, 0]] | ~kept[pairs[:, 1]]
        both = ~kept[pairs[:, 0]] & ~kept[pairs[:, 1]]
        rows.append((label, float(member[exact].mean()) if exact.any() else float("nan"), float(member[~exact].mean()), float(both.mean()),
                     sel.manifest["ratio_achieved"], sel.manifest.get("natural_ratio")))
        print(rows[-1], flush=True)
    print(f"\nfashion-mnist {len(base):,} images + {len(pairs):,} copies ({int(exact.sum())} exact, the rest with noise σ = 8 grey levels), "
          f"keep 1/1.2; {machine()}\n")
    print("| method | kept share (natural) | exact pairs with a member pruned | noisy pairs with a member pruned | pairs with both pruned |")
    print("|---|---:|---:|---:|---:|")
    for label, exact_member, noisy_member, both, achieved, natural in rows:
        natural_text = f" ({natural:.3f})" if natural is not None else ""
        print(f"| {label} | {achieved:.3f}{natural_text} | {100 * exact_member:.1f} % | {100 * noisy_member:.1f} % | {100 * both:.1f} % |")


def _merged(params: dict, extra: dict) -> dict:
    """``params`` with ``extra`` laid over it, the nested ``agent`` settings merged key by key."""
    merged = {**params, **extra}
    if "agent" in params and "agent" in extra:
        merged["agent"] = {**params["agent"], **extra["agent"]}
    return merged


def redundancy_training(args) -> None:
    """Does the de-duplicated subset train as well as a random one of the same size? For each seed:
    RL-Selector's selection and a random subset with as many samples, each training a fresh
    evaluation network with that seed (paired: same seed, same initialisation); final-epoch test top-1.
    Beside them the oracle that prunes exactly the copies (the original images, 1/1.2 of the set) and
    a random subset of its size: how much a perfect de-duplication can gain over random at all.

    With ``--validation F`` a seeded class-stratified share F of the images is held out first (no copies
    of it are made, no selection sees it), and every network is scored on it as well as on the test set:
    the figure a choice between settings may rest on."""
    base = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    held = None
    if args.validation:
        base, held, _ = carve_validation(base, args.validation, seed=0)
    data, pairs, exact = with_duplicates(base, 0.2, seed=0, exact_share=args.exact_share)
    ratio = 1 / 1.2
    params = {"recipe": "cpu", **json.loads(args.params)}
    rows = []
    for seed in args.seeds:
        sel = select(data, "rl-selector", ratio, seed, progress=False, **params)
        rand = select(data, "random", len(sel.indices) / len(data), seed, progress=False)
        oracle_random = select(data, "random", len(base) / len(data), seed, progress=False)
        scored = [evaluate_subset(subset, args.eval_epochs, seed, held=held)
                  for subset in (sel.subset(data), rand.subset(data), data.subset(np.arange(len(base)), tag="originals"), oracle_random.subset(data))]
        member = float((~sel.mask[pairs[:, 0]] | ~sel.mask[pairs[:, 1]]).mean())
        rows.append((seed, len(sel.indices), len(rand.indices), member, [test for test, _ in scored], [val for _, val in scored]))
        print(rows[-1], flush=True)
    print(f"\nfashion-mnist {len(base):,} images + {len(pairs):,} copies ({int(exact.sum())} exact), keep 1/1.2; RL-Selector parameters "
          f"{args.params}; evaluation ResNet-18 w16 {args.eval_epochs} epochs, final-epoch top-1 %; {machine()}")
    for name, column in (("validation", 5), ("test", 4)) if held is not None else (("test", 4),):
        if held is not None:
            print(f"\n**Validation** ({len(held):,} images held out of the training set, class-stratified, seed 0):" if name == "validation"
                  else "\n**Test** (the test set):")
        print("\n| seed | kept (rl / random) | pairs with a member pruned | rl-selector | random | difference | oracle: copies pruned | random of its size | difference |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows:
            seed, n_rl, n_random, member, (rl, rand_, oracle, oracle_rand) = *row[:4], row[column]
            print(f"| {seed} | {n_rl} / {n_random} | {100 * member:.1f} % | {rl:.2f} | {rand_:.2f} | {rl - rand_:+.2f} "
                  f"| {oracle:.2f} | {oracle_rand:.2f} | {oracle - oracle_rand:+.2f} |")
        means = [statistics.mean(r[column][k] for r in rows) for k in range(4)]
        print(f"| **mean** | | | {means[0]:.2f} | {means[1]:.2f} | {_difference([r[column][0] - r[column][1] for r in rows])} "
              f"| {means[2]:.2f} | {means[3]:.2f} | {_difference([r[column][2] - r[column][3] for r in rows])} |")


def _difference(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else float("nan")
    return f"**{statistics.mean(values):+.2f}** ± {spread:.2f}"


def evaluate_subset(subset, epochs: int, seed: int, held: Split | None = None, width: int | None = None) -> tuple[float, float | None]:
    """Final-epoch top-1 of the ``cpu`` recipe's network (``width``: another width) trained from scratch
    on ``subset``: on the test set, and on ``held`` (a validation split; None: not scored)."""
    named = get_recipe("cpu")
    config = replace(named.train, epochs=epochs, seed=seed)
    net, result = train_model(subset, model=named.model, width=width or named.width, config=config, progress=False)
    if held is None:
        return result.top1, None
    return result.top1, evaluate(net, held, BatchTransform.for_dataset(subset, augment=False))["top1"]


def stored_evaluation(path: Path, subset, epochs: int, seed: int, held: Split | None = None, width: int | None = None) -> dict:
    """:func:`evaluate_subset`'s test and validation top-1, the kept count and the CPU seconds of the
    training, written to ``path`` at once and read back from it on a rerun (resumable benchmarks)."""
    if path.exists():
        return json.loads(path.read_text())
    started = time.process_time()
    test, validation = evaluate_subset(subset, epochs, seed, held=held, width=width)
    record = {"test": test, "validation": validation, "kept": len(subset), "cpu_s": time.process_time() - started}
    atomic_write_json(path, record)
    return record


def plus_minus(values: list[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f}"


def quality(args) -> None:
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    runs = _chosen_runs(args.runs)
    results: dict[tuple[str, float], list[float]] = {}
    natural: dict[float, list[float]] = {}
    for ratio in args.ratios:
        for seed in args.seeds:
            for label, method, params in runs:
                sel = select(data, method, ratio, seed, progress=False, cache_dir=args.cache, **params)
                if label == "rl-selector":
                    natural.setdefault(ratio, []).append(sel.manifest["natural_ratio"])
                results.setdefault((label, ratio), []).append(evaluate_subset(sel.subset(data), args.eval_epochs, seed)[0])
                print(f"ratio {ratio} seed {seed} {label}: top-1 {results[(label, ratio)][-1]:.2f}" + (f" natural {natural[ratio][-1]:.3f}" if label == "rl-selector" else ""), flush=True)
    print(f"\nfashion-mnist, {len(data):,} training images (stratified), selection recipe cpu; evaluation ResNet-18 w16 "
          f"{args.eval_epochs} epochs; final-epoch test top-1 %, mean ± std over seeds {args.seeds}; {machine()}\n")
    print("| method | " + " | ".join(f"{int(100 * r)} %" for r in args.ratios) + " |")
    print("|---|" + "---:|" * len(args.ratios))
    for label, _, _ in runs:
        cells = [results[(label, r)] for r in args.ratios]
        print(f"| {label} | " + " | ".join(plus_minus(c) for c in cells) + " |")
    print("\nRL-Selector natural ratio (before band enforcement), per seed:\n")
    for ratio in natural:
        inside = sum(abs(v - ratio) <= BAND for v in natural[ratio])
        print(f"- {ratio}: " + ", ".join(f"{v:.3f}" for v in natural[ratio]) + f" ({inside}/{len(natural[ratio])} inside ±1 %)")


def convergence(args) -> None:
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    rows = []
    for ratio in args.ratios:
        naturals = []
        for seed in args.seeds:
            sel = select(data, "rl-selector", ratio, seed, recipe="cpu", progress=False)
            naturals.append(sel.manifest["natural_ratio"])
            print(f"ratio {ratio} seed {seed}: natural {naturals[-1]:.3f} enforced {sel.manifest['band_enforced']}", flush=True)
        rows.append((ratio, naturals))
    print(f"\nfashion-mnist, {len(data):,} images, rl-selector recipe cpu (ResNet-18 w16, 5 epochs); {machine()}\n")
    print("| ratio | natural ratio per seed | inside ±1 % |")
    print("|---:|---|---:|")
    for ratio, naturals in rows:
        print(f"| {ratio} | " + ", ".join(f"{v:.3f}" for v in naturals) + f" | {sum(abs(v - ratio) <= BAND for v in naturals)}/{len(naturals)} |")


def transfer(args) -> None:
    data = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    named = get_recipe("cpu")
    rows: dict[float, dict[str, list[float]]] = {r: {"full_s": [], "transfer_s": [], "overlap": [], "full": [], "transfer": []} for r in args.ratios}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            source = Path(tmp) / f"source-{seed}"
            select(data, "rl-selector", args.source, seed, recipe="cpu", out=source, progress=False)
            for ratio in args.ratios:
                start = time.process_time()
                full = select(data, "rl-selector", ratio, seed, recipe="cpu", progress=False)
                full_s = time.process_time() - start
                start = time.process_time()
                moved = select(data, "rl-selector", ratio, seed, recipe="cpu", init_from=str(source), progress=False)
                transfer_s = time.process_time() - start
                row = rows[ratio]
                row["full_s"].append(full_s)
                row["transfer_s"].append(transfer_s)
                row["overlap"].append(float((full.mask & moved.mask).sum() / max(1, full.mask.sum())))
                row["full"].append(evaluate_subset(full.subset(data), args.eval_epochs, seed)[0])
                row["transfer"].append(evaluate_subset(moved.subset(data), args.eval_epochs, seed)[0])
                print(f"seed {seed} ratio {ratio}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in row.items()), flush=True)
    print(f"\nfashion-mnist, {len(data):,} images; source selection rl-selector {args.source} (preset cpu, "
          f"{named.train.epochs} epochs), fine-tuned with init_from (recipe default epochs); evaluation ResNet-18 "
          f"w{named.width} {args.eval_epochs} epochs, final-epoch test top-1 %, mean ± std over seeds {args.seeds}; {machine()}\n")
    print("| ratio | full selection CPU s | transfer CPU s | cost ratio | kept-set overlap | top-1 full selection | top-1 transfer |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for ratio, row in rows.items():
        print(f"| {ratio} | {np.mean(row['full_s']):.1f} | {np.mean(row['transfer_s']):.1f} | "
              f"{np.mean(row['transfer_s']) / np.mean(row['full_s']):.3f} | {np.mean(row['overlap']):.3f} | {plus_minus(row['full'])} | {plus_minus(row['transfer'])} |")


def _add_params(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="{}", help='RL-Selector parameters as JSON laid over each RL-Selector run\'s, e.g. \'{"reference_size": 1024}\'')


def _add_run_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", help=f"rows to compare (default all): {', '.join(repr(r[0]) for r in COMPARED_RUNS)}")
    parser.add_argument("--cache", help="cache directory for the target network's features (cover-static trains it once per seed)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "cover-child":
        cover_child(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cost")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2)
    _add_params(p)
    p = sub.add_parser("cover")
    p.add_argument("--sizes", type=int, nargs="+", default=[6000, 60000])
    p.add_argument("--dims", type=int, nargs="+", default=[64, 512])
    p = sub.add_parser("refresh")
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--classes", type=int, default=10)
    p = sub.add_parser("redundancy")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--exact-share", type=float, default=0.5, help="share of the copies that are exact (the rest noisy)")
    _add_run_choice(p)
    _add_params(p)
    p = sub.add_parser("redundancy-training")
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--exact-share", type=float, default=0.5)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-epochs", type=int, default=5)
    p.add_argument("--validation", type=float, default=0.0, help="share of the images held out (stratified) and scored beside the test set")
    _add_params(p)
    p = sub.add_parser("quality")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-epochs", type=int, default=5)
    _add_run_choice(p)
    p = sub.add_parser("convergence")
    p.add_argument("--limit", type=int, default=10000)
    p.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.5, 0.7, 0.9])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p = sub.add_parser("transfer")
    p.add_argument("--limit", type=int, default=3000)
    p.add_argument("--source", type=float, default=0.5, help="ratio of the finished selection the others start from")
    p.add_argument("--ratios", type=float, nargs="+", default=[0.3, 0.7])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--eval-epochs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    {"cost": cost, "cover": cover_scaling, "refresh": refresh, "redundancy": redundancy, "redundancy-training": redundancy_training, "quality": quality, "convergence": convergence, "transfer": transfer}[args.command](args)


if __name__ == "__main__":
    main()
