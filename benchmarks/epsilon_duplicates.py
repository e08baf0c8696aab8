"""Which ε rule sees near-duplicates? Fashion-MNIST with 20 % copies, the target network's features.

Trains the ``cpu`` recipe's target on the images plus copies of a seeded 20 % of them (half exact,
half with Gaussian noise σ = 8 grey levels), keeps two kinds of features — the training forward's
(train mode, augmented: what RL-Selector's bank holds) and an eval-mode pass without augmentation —
and reports, for every ε rule, the share of (original, copy) pairs within ε of each other and the
share of all samples with at least one same-class neighbour within ε.

    .venv/bin/python benchmarks/epsilon_duplicates.py --limit 3000 --out runs/eps-dup
"""

from __future__ import annotations

import argparse
import platform
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from rl_selector_bench import with_duplicates  # noqa: E402

from rlselector import load_dataset  # noqa: E402
from rlselector.cover import Neighbours, cover, epsilon, nearest_neighbours  # noqa: E402
from rlselector.data.loader import input_thumbnails  # noqa: E402
from rlselector.data.transforms import BatchTransform  # noqa: E402
from rlselector.recipes import get_recipe  # noqa: E402
from rlselector.selection.observe import FeatureRecorder  # noqa: E402
from rlselector.selection.target import train_target  # noqa: E402
from rlselector.train.evaluate import forward_split  # noqa: E402
from rlselector.train.hooks import TrainHook  # noqa: E402

RULES = [("quantile", 0.01), ("quantile", 0.001), ("nn-median", None), ("mean", None)]


class Bank(TrainHook):
    def __init__(self, n):
        self.recorder = FeatureRecorder(n)

    def on_batch(self, batch):
        self.recorder.observe(batch.indices, features=batch.features)


def features_of(data, out: Path, seed: int):
    path = out / f"features-seed{seed}.npz"
    if path.exists():
        stored = np.load(path)
        return stored["train_mode"], stored["eval_mode"]
    named = get_recipe("cpu")
    hook = Bank(len(data))
    model, _ = train_target(data, named, replace(named.train, seed=seed), workdir=None, resume=False, progress=False, hooks=[hook])
    eval_mode, _ = forward_split(model, data.train, BatchTransform.for_dataset(data, augment=False))
    train_mode = hook.recorder.features()
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, train_mode=train_mode, eval_mode=eval_mode)
    return train_mode, eval_mode


def greedy_closest_pruning(neighbours, scale: torch.Tensor, prune: int, round_size: int = 30) -> torch.Tensor:
    """The oracle of a set-aware rule: prune, in rounds, the kept samples whose nearest kept candidate
    is closest in units of ``scale``, skipping one whose nearest kept was pruned this round (it
    waits for the re-count). Returns the kept mask."""
    n = len(scale)
    kept = torch.ones(n, dtype=torch.bool)
    relative = neighbours.distance.double() / scale[:, None].clamp_min(1e-12)
    done = 0
    while done < prune:
        listed_kept = (neighbours.index >= 0) & kept[neighbours.index.clamp_min(0)]
        nearest = torch.where(listed_kept, relative, torch.full_like(relative, torch.inf)).min(1)
        order = torch.where(kept, nearest.values, torch.full_like(nearest.values, torch.inf)).argsort()
        budget, pruned_now = min(round_size, prune - done), torch.zeros(n, dtype=torch.bool)
        for i in order.tolist():
            if pruned_now[int(neighbours.index[i, nearest.indices[i]])]:
                continue
            pruned_now[i] = True
            if int(pruned_now.sum()) == budget:
                break
        kept &= ~pruned_now
        done += budget
    return kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/eps-dup"))
    args = parser.parse_args()
    base = load_dataset("fashion-mnist", limit=args.limit, seed=0)
    data, pairs, exact = with_duplicates(base, 0.2, seed=0, exact_share=0.5)
    labels = data.train.labels.numpy()
    train_mode, eval_mode = features_of(data, args.out, args.seed)
    print(f"fashion-mnist {len(base):,} + {len(pairs):,} copies ({int(exact.sum())} exact); {platform.machine()}\n")
    print("| features | ε rule | exact pairs within ε | noisy pairs within ε | samples with a neighbour within ε | mean degree |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, feats in (("train mode (bank)", train_mode), ("eval mode", eval_mode)):
        feats = torch.from_numpy(feats)
        distance = (feats[pairs[:, 0]] - feats[pairs[:, 1]]).norm(dim=1).double()
        for rule, q in RULES:
            eps = epsilon(feats, labels, rule=rule, quantile=q or 0.01)
            class_eps = torch.tensor([eps[int(labels[i])] for i in pairs[:, 0]], dtype=torch.float64)
            inside = distance <= class_eps
            result = cover(feats, labels, eps)
            name = rule if q is None else f"{rule} {q}"
            print(f"| {kind} | {name} | {inside[torch.from_numpy(exact)].float().mean():.3f} | {inside[~torch.from_numpy(exact)].float().mean():.3f} | "
                  f"{(result.degree > 0).float().mean():.3f} | {result.degree.mean():.4f} |", flush=True)
        neighbours = nearest_neighbours(feats, labels, 16)
        for k in (1, 4, 8):  # RL-Selector's set-aware scale: the k-th nearest same-class neighbour's distance
            scale = neighbours.distance[torch.from_numpy(pairs[:, 0]), k - 1].double()
            inside = distance <= scale
            print(f"| {kind} | the original's distance to its neighbour no. {k} | {inside[torch.from_numpy(exact)].float().mean():.3f} | "
                  f"{inside[~torch.from_numpy(exact)].float().mean():.3f} | | |", flush=True)
        nn = cover(feats, labels, 0.0).nn_index
        twin_is_nn = (nn[torch.from_numpy(pairs[:, 1])] == torch.from_numpy(pairs[:, 0]))
        ratio = distance / cover(feats, labels, 0.0, kept=None).nn_distance[torch.from_numpy(pairs[:, 0])]
        print(f"| {kind} | (twin is the copy's nearest neighbour) | {twin_is_nn[torch.from_numpy(exact)].float().mean():.3f} | "
              f"{twin_is_nn[~torch.from_numpy(exact)].float().mean():.3f} | | |")
    print("\nGreedy set-aware oracle at 1/1.2: pairs with a member pruned (exact / noisy) by the scale of closeness\n")
    print("| features | scale | exact pairs | noisy pairs |")
    print("|---|---|---:|---:|")
    prune = len(labels) - round(len(labels) / 1.2)
    spaces = [("train mode (bank)", train_mode), ("eval mode", eval_mode),
              ("eval mode, l2-normalised", torch.nn.functional.normalize(torch.from_numpy(eval_mode), dim=1).numpy()),
              ("pixels", data.train.images.reshape(len(labels), -1).float().numpy())]
    for kind, feats in spaces:
        feats = torch.from_numpy(feats)
        neighbours = nearest_neighbours(feats, labels, 16)
        eps = epsilon(feats, labels, rule="quantile", quantile=0.01)
        scales = {"class ε (quantile 0.01)": torch.tensor([eps[int(label)] for label in labels], dtype=torch.float64)}
        scales.update({f"the sample's distance to its neighbour no. {k}": neighbours.distance[:, k - 1].double() for k in (1, 4, 8)})
        for name, scale in scales.items():
            _print_oracle(kind, name, greedy_closest_pruning(neighbours, scale, prune), pairs, exact)
    # RL-Selector's default read-out: a kept neighbour close in either space (each in units of the
    # sample's 4th-neighbour distance there) covers the sample
    lists = [nearest_neighbours(torch.from_numpy(eval_mode), labels, 16), nearest_neighbours(input_thumbnails(data.train), labels, 16)]
    both = Neighbours(torch.cat([n.index for n in lists], 1),
                      torch.cat([n.distance.double() / n.distance[:, 3:4].double().clamp_min(1e-12) for n in lists], 1).float())
    kept = greedy_closest_pruning(both, torch.ones(len(labels), dtype=torch.float64), prune)
    _print_oracle("eval mode or the input's 14×14 thumbnail, the closer", "the sample's distance to its neighbour no. 4 in each", kept, pairs, exact)


def _print_oracle(kind: str, scale: str, kept: torch.Tensor, pairs: np.ndarray, exact: np.ndarray) -> None:
    member = (~kept[pairs[:, 0]] | ~kept[pairs[:, 1]]).numpy()
    print(f"| {kind} | {scale} | {member[exact].mean():.3f} | {member[~exact].mean():.3f} |", flush=True)


if __name__ == "__main__":
    main()
