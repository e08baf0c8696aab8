"""Is the evaluation's scatter the network, or its batch-norm statistics? Final-epoch test top-1 as trained,
and after the batch-norm running statistics are recomputed on the training subset.

    .venv/bin/python benchmarks/precise_bn.py runs/noise --out runs/precise-bn --method rl-selector --eval-seeds 100 101 102 103

For the selections of ``--method`` and random in a ``cpu-full``-protocol results directory (as
``eval_seeds.py``), each (selection seed, evaluation seed) trains the grid's evaluation network
once (ResNet-18 width 8, the ``cpu`` recipe, 5 epochs, one thread) and is tested twice: with the
running statistics the training left (the grid's number), and after ``recalibrate_batch_norm`` (``torch.optim.swa_utils.update_bn``)
recomputes them as a plain average over the subset's training images without augmentation (the
weights unchanged). Prints both accuracies and the paired differences' scatter over evaluation seeds.
Resumable: each training's two figures are stored under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from eval_seeds import EPOCHS, WIDTH, paired_selections, selection_arguments  # noqa: E402
from rl_selector_bench import machine  # noqa: E402

from rlselector import load_selection  # noqa: E402
from rlselector.data.transforms import BatchTransform  # noqa: E402
from rlselector.io import atomic_write_json  # noqa: E402
from rlselector.recipes import get_recipe  # noqa: E402
from rlselector.train import train_model  # noqa: E402
from rlselector.train.device import Runtime  # noqa: E402
from rlselector.train.evaluate import evaluate  # noqa: E402
from rlselector.train.loop import recalibrate_batch_norm  # noqa: E402


def trained_and_recalibrated(path: Path, subset, test, seed: int) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    config = replace(get_recipe("cpu").train, epochs=EPOCHS, seed=seed)
    net, result = train_model(subset, model="resnet18", width=WIDTH, config=config, progress=False)
    clean = BatchTransform.for_dataset(subset, augment=False)
    recalibrate_batch_norm(net, subset.train, clean, 256, Runtime.of("cpu", "off", False, False, 0))  # what recalibrate_bn runs
    record = {"as_trained": result.top1, "recalibrated": evaluate(net, test, clean)["top1"]}
    atomic_write_json(path, record)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    selection_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, cells, seeds = paired_selections(args.results, args.method, args.ratio)
    scores: dict[tuple[str, str, int, int], float] = {}
    for s in seeds:
        for method in (args.method, "random"):
            subset = load_selection(args.results / cells[(method, s)]["selection"]["dir"]).subset(data)
            for e in args.eval_seeds:
                record = trained_and_recalibrated(args.out / f"{method}-s{s}-e{e}.json", subset, data.test, e)
                for kind, value in record.items():
                    scores[(kind, method, s, e)] = value
                print(f"{method} seed {s} evaluation seed {e}: as trained {record['as_trained']:.2f}, recalibrated {record['recalibrated']:.2f}", flush=True)
    print(f"\n{args.method} and random at {args.ratio:.0%}, {args.results}: {len(seeds)} selection seeds × {len(args.eval_seeds)} "
          f"evaluation seeds; {machine()}\n")
    print("| test top-1 | random: mean, min–max | " + args.method + ": mean, min–max | "
          f"{args.method} − random: mean | sd over evaluation seeds (pooled) | trainings below 70 % |")
    print("|---|---|---|---:|---:|---:|")
    for kind in ("as_trained", "recalibrated"):
        values = {m: np.array([[scores[(kind, m, s, e)] for e in args.eval_seeds] for s in seeds]) for m in (args.method, "random")}
        d = values[args.method] - values["random"]
        within = math.sqrt(float(d.var(axis=1, ddof=1).mean()))
        low = sum(int((v < 70).sum()) for v in values.values())
        cells_text = " | ".join(f"{v.mean():.2f}, {v.min():.2f}–{v.max():.2f}" for v in (values["random"], values[args.method]))
        print(f"| {kind.replace('_', ' ')} | {cells_text} | {d.mean():+.2f} | {within:.2f} | {low} of {d.size * 2} |")


if __name__ == "__main__":
    main()
