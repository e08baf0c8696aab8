"""Which read-out of one trained RL-Selector agent trains best, on a validation split?

The read-out (``readout_features``, ``readout_input_within``) acts only after the target network and the
agent have trained, so one selection per (ratio, seed) serves every candidate: its finished work
directory is copied and the selection resumed with the candidate's read-out, which re-runs only the
decision. Each kept set, and a random one of the first's size, trains the ``cpu-full`` grid's evaluation
network (ResNet-18 width 8, the ``cpu`` recipe) with the same evaluation seed, paired; it is scored on a
seeded, class-stratified hold-out of the training images (no selection sees it) and on the test set.
Choose on the validation columns; the test columns are reported, not chosen on.

    .venv/bin/python benchmarks/readout_validation.py --out runs/readout-val --ratios 0.3 --seeds 0 1 2

Resumable: every selection and every evaluation is stored under ``--out`` and reused on a rerun.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from rl_selector_bench import machine, stored_evaluation  # noqa: E402

from rlselector import load_dataset, load_selection, select  # noqa: E402
from rlselector.bench.data import carve_validation  # noqa: E402
from rlselector.bench.stats import paired_difference  # noqa: E402

CANDIDATES = {
    "eval+input": {"readout_features": "eval+input", "readout_input_within": None},
    "eval+input, images within 0.4": {"readout_features": "eval+input", "readout_input_within": 0.4},
    "eval": {"readout_features": "eval", "readout_input_within": None},
}
"""Read-outs compared, by label; the first trains the target and the agent, the others read its result out."""
TRAINED = next(iter(CANDIDATES))


def selection_of(data, out: Path, ratio: float, seed: int, params: dict, base: Path):
    """The selection with read-out ``params``: the first candidate trained in ``base``, the others
    resumed from a copy of its finished work directory (only the decision runs again)."""
    if (out / "selection.json").exists():
        return load_selection(out)
    if out != base:
        shutil.copytree(base / "work", out / "work", dirs_exist_ok=True)  # a copy a crash cut short is finished
    return select(data, "rl-selector", ratio, seed, out=out, resume=True, progress=False, recipe="cpu", **params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=8000, help="Fashion-MNIST training images before the hold-out (the cpu-full grid's)")
    parser.add_argument("--validation", type=float, default=0.1, help="share held out, class-stratified, seed 0")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.3])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-epochs", type=int, default=5)
    parser.add_argument("--eval-width", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data, held, _ = carve_validation(load_dataset("fashion-mnist", limit=args.limit, seed=0), args.validation, seed=0)
    results: dict[tuple[float, str], dict[int, dict]] = {}
    for ratio in args.ratios:
        for seed in args.seeds:
            cell = args.out / f"r{ratio:.2f}-s{seed}"
            base = cell / "trained"
            for label, params in CANDIDATES.items():
                where = base if label == TRAINED else cell / label.replace(", ", "-").replace(" ", "_")
                sel = selection_of(data, where, ratio, seed, params, base)
                results.setdefault((ratio, label), {})[seed] = stored_evaluation(where / "eval.json", sel.subset(data), args.eval_epochs,
                                                                                 seed, held, args.eval_width)
                if label == TRAINED:
                    rand = select(data, "random", len(sel.indices) / len(data), seed, progress=False)
                    results.setdefault((ratio, "random"), {})[seed] = stored_evaluation(cell / "random.json", rand.subset(data),
                                                                                        args.eval_epochs, seed, held, args.eval_width)
                print(ratio, seed, label, results[(ratio, label)][seed], flush=True)
    print(f"\nfashion-mnist {len(data):,} training images, {len(held):,} held out (class-stratified, seed 0); evaluation ResNet-18 "
          f"w{args.eval_width}, {args.eval_epochs} epochs, final-epoch top-1 %, paired by seed; {machine()}")
    for split in ("validation", "test"):
        print(f"\n**{split}**: mean top-1, and the paired difference from random (mean, 95 % CI, n = seeds)\n")
        print(f"| ratio | read-out | top-1 | − random | 95 % CI | − {TRAINED} | 95 % CI |")
        print("|---:|---|---:|---:|---|---:|---|")
        for ratio in args.ratios:
            rand = {s: r[split] for s, r in results[(ratio, "random")].items()}
            base = {s: r[split] for s, r in results[(ratio, TRAINED)].items()}
            print(f"| {ratio:.0%} | random | {np.mean(list(rand.values())):.2f} | | | | |")
            for label in CANDIDATES:
                ours = {s: r[split] for s, r in results[(ratio, label)].items()}
                cells = [f"{np.mean(list(ours.values())):.2f}"]
                for d in (paired_difference(ours, rand), paired_difference(ours, base) if label != TRAINED else None):
                    cells += ["", ""] if d is None else [f"**{d.mean:+.2f}**", f"{d.low:+.2f} … {d.high:+.2f}" if d.low is not None else "one seed"]
                print(f"| {ratio:.0%} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
