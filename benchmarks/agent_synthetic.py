"""Does the RL-Selector agent converge and learn? Fixed synthetic features, no target network (method.md §9).

6,000 samples: 10 Gaussian classes of varied spread (500 each, d = 64) plus 1,000 near-duplicates
of random members. RL-Selector's own hook (``SelectorHook``) is replayed over the features with the
training loop's replay (the cover refreshed once: the features do not move), and the kept set is
read off with the method's default decision (the policy's ordered read-out, its ratio price re-set,
the band enforced by the final scores only if it still misses). Reported per ratio and variant:

- natural ratio: the read-out's kept share before any top-k enforcement (``first_share`` in the
  JSON: before the price re-set);
- agreement (``agr-rank``): share of the policy's top-sr·N among the sr·N least redundant by the
  untied static redundancy rank (degree, then nearest-neighbour closeness); chance = sr. ``agree``
  counts against the degree alone, ties resolved in the policy's favour;
- duplicate pairs with a member pruned under the final kept set, and with both pruned, next to a
  random selection's expected share 1 − sr²;
- EV: the critic's explained variance against its TD target in the last epoch.

Variants include two broken agents that must lose what the default shows: ``lr-0`` and
``shuffled-reward`` (each batch's Ĉ shuffled across its samples).

A Markdown summary (the table of ``docs/agent-convergence.md``) closes the output.

    .venv/bin/python benchmarks/agent_synthetic.py                         # the table of the docs
    .venv/bin/python benchmarks/agent_synthetic.py --variants default paper-literal --ratios 0.5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass

import torch

from rlselector.agent import AgentConfig
from rlselector.api import get_method
from rlselector.methods.rl_selector import SelectorHook
from rlselector.selection.policies import band_decision
from rlselector.train import replay_features
from rlselector.cover import Cover, cover, epsilon, greedy_set_aware_prune, redundancy_rank

_DEFAULTS = get_method("rl-selector").make_params()
REFERENCE_SIZE = _DEFAULTS.reference_size
"""RL-Selector's default number of reference states, which the replay uses unless told otherwise."""
READOUT = f"{_DEFAULTS.readout_passes}x{_DEFAULTS.readout_chunk}"
"""RL-Selector's default read-out, as PASSESxCHUNK (``readout_passes`` sweeps, ``readout_chunk`` samples at a time)."""

VARIANTS: dict[str, AgentConfig] = {
    "default": AgentConfig(),
    "paper-literal": AgentConfig.paper_literal(),
    "method-9": AgentConfig.method_9(),
    # Broken agents: must lose what the default shows.
    "lr-0": AgentConfig(learning_rate=0.0),
    "shuffled-reward": AgentConfig(),
    # One lever of the default changed at a time (docs/agent-convergence.md, one row per parameter):
    "no-critic": AgentConfig.no_critic(),
    "action-samples-1": AgentConfig(action_samples=1),
    "gamma-0.5": AgentConfig(gamma=0.5),
    "gamma-0.9": AgentConfig(gamma=0.9),
    "normalized-advantage": AgentConfig(normalize_advantage=True),
    "hidden-128-64": AgentConfig(hidden_sizes=(128, 64)),
    "lr-3e-4": AgentConfig(learning_rate=3e-4),
    "constant-lr": AgentConfig(final_lr_fraction=1.0),
    "weight-decay-5e-4": AgentConfig(weight_decay=5e-4),
    "adam-eps-1e-8": AgentConfig(adam_eps=1e-8),
    "updates-1": AgentConfig(updates_per_step=1),
    "updates-4": AgentConfig(updates_per_step=4),  # the default until 2026-12-01 (with 4,096 reference states)
    "temperature-1": AgentConfig(temperature=1.0, entropy_coef=1.0),
    "no-entropy": AgentConfig(entropy_coef=0.0),
    "dual-ascent": AgentConfig(ratio_control="dual-ascent"),
    "dual-ascent-rate-0.05": AgentConfig(ratio_control="dual-ascent", multiplier_rate=0.05),
    "penalty": AgentConfig(ratio_control="penalty"),
    "penalty-coef-1": AgentConfig(ratio_control="penalty", ratio_coef=1.0),
    "tracking-0.1": AgentConfig(tracking_rate=0.1),
    "batch-feedback": AgentConfig(ratio_feedback="batch-decisions"),
    "centred-cover": AgentConfig(cover_signal="centred"),
    "no-averaging": AgentConfig(decision_ema=0.0),
    "raw-states": AgentConfig(normalize_states=False),
    "no-set-state": AgentConfig(set_state=False),
    "cover-weight-1": AgentConfig(low_ratio_cover_weight=None),  # the ε-cover rank whole at every ratio: the default until 2026-12-04
    "cover-weight-0.3": AgentConfig(cover_weight=0.3, low_ratio_cover_weight=None),
    "cover-weight-0": AgentConfig(cover_weight=0.0, low_ratio_cover_weight=None),
    "set-weight-0": AgentConfig(set_weight=0.0),
    "set-weight-1": AgentConfig(set_weight=1.0),
    "set-weight-4": AgentConfig(set_weight=4.0),
    "neighbours-8": AgentConfig(neighbours=8),
    "scale-neighbour-1": AgentConfig(scale_neighbour=1),
    "scale-neighbour-8": AgentConfig(scale_neighbour=8),
}


@dataclass
class SyntheticData:
    features: torch.Tensor
    labels: torch.Tensor
    duplicate_pairs: torch.Tensor
    """(P, 2) indices (original, near-duplicate)."""


def make_synthetic(
    *, classes: int = 10, per_class: int = 500, dim: int = 64, duplicate_pairs: int = 1000, seed: int = 0
) -> SyntheticData:
    """Gaussian classes around well-separated means, plus near-duplicates (a copy of a random sample
    moved by 1 % of its class spread).

    The spread varies by class (0.5 to 2) and by sample (a log-normal factor, σ = 0.3): each class has
    a dense core and sparse outskirts, as real feature clouds do. With one isotropic spread per class,
    64-d distances concentrate so much that no ε separates duplicates from the rest; with the scale
    mixture, keeping the least covered (ε = 1 % quantile) drops a member of 96 % of the duplicate
    pairs at ratio 0.5, near the 99 % method.md §9 reports for its data.
    """
    generator = torch.Generator().manual_seed(seed)
    means = 8.0 * torch.randn(classes, dim, generator=generator)
    spreads = torch.linspace(0.5, 2.0, classes)
    labels = torch.arange(classes).repeat_interleave(per_class)
    sample_spread = spreads[labels] * torch.exp(0.3 * torch.randn(len(labels), generator=generator))
    features = means[labels] + sample_spread[:, None] * torch.randn(len(labels), dim, generator=generator)
    originals = torch.randperm(len(labels), generator=generator)[:duplicate_pairs]
    copies = features[originals] + 0.01 * spreads[labels[originals], None] * torch.randn(
        duplicate_pairs, dim, generator=generator
    )
    pairs = torch.stack([originals, len(labels) + torch.arange(duplicate_pairs)], 1)
    return SyntheticData(torch.cat([features, copies]), torch.cat([labels, labels[originals]]), pairs)


def train_agent(
    features: torch.Tensor,
    labels: torch.Tensor,
    target_ratio: float,
    config: AgentConfig,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    eps_rule: str = "quantile",
    eps_quantile: float = 0.01,
    reference_size: int = REFERENCE_SIZE,
    shuffled_reward: bool = False,
) -> SelectorHook:
    """RL-Selector's own hook (``rlselector.methods.rl_selector.SelectorHook``) replayed over fixed
    features: the cover refreshed before the first step, then ``epochs`` passes of minibatches.
    ``shuffled_reward`` permutes each batch's Ĉ across its samples before the agent sees it (a broken
    reward: the same values, no longer the samples')."""
    hook = SelectorHook(labels.numpy(), target_ratio, config, seed=seed, epochs=None, total_steps=epochs * math.ceil(len(labels) / batch_size),
                        epsilon_rule=eps_rule, epsilon_quantile=eps_quantile, set_aware=False, reference_size=reference_size, progress=False)
    hook.bank = features.clone()
    hook.refresh_cover()
    if shuffled_reward:
        step, generator = hook.agent.step, torch.Generator().manual_seed(seed + 99)

        def shuffled_step(states, cover_hat, **kwargs):
            return step(states, cover_hat[torch.randperm(len(cover_hat), generator=generator)], **kwargs)

        hook.agent.step = shuffled_step
    replay_features(features, labels, epochs=epochs, batch_size=batch_size, seed=seed, hooks=[hook], progress=False)
    return hook


def agreement(keep_scores: torch.Tensor, degree: torch.Tensor, ratio: float) -> float:
    """Share of the top-k by keep score that is among the k least covered, ties in C in its favour."""
    n = degree.shape[0]
    k = int(round(ratio * n))
    chosen = torch.topk(keep_scores, k).indices
    threshold = torch.kthvalue(degree, k).values
    strictly_below = int((degree < threshold).sum())
    chosen_degree = degree[chosen]
    return (int((chosen_degree < threshold).sum()) + min(int((chosen_degree == threshold).sum()), k - strictly_below)) / k


def duplicate_drop(kept: torch.Tensor, pairs: torch.Tensor) -> tuple[float, float]:
    """(share of pairs with ≥ 1 member pruned, share with both pruned) under the kept mask."""
    pruned = ~kept[pairs]
    return float(pruned.any(1).float().mean()), float(pruned.all(1).float().mean())


def top_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    kept = torch.zeros(scores.shape[0], dtype=torch.bool)
    kept[torch.topk(scores, int(round(ratio * scores.shape[0]))).indices] = True
    return kept


ORACLES = ("cover-oracle", "set-aware-oracle", "random")
"""Rows without an agent: the exact cover ranking, its set-aware greedy pruning, a random subset."""


def set_aware_keep(data: SyntheticData, eps: dict[int, float], ratio: float, seed: int,
                   prune_first: torch.Tensor | None = None) -> torch.Tensor:
    """The set-aware greedy pruning of ``cover.greedy_set_aware_prune`` (rounds of 5 % of the set),
    by the cover's own order or by ``prune_first`` (a policy's keep scores)."""
    n = len(data.labels)
    return greedy_set_aware_prune(data.features, data.labels, eps, keep=int(round(ratio * n)), round_size=max(1, n // 20),
                                  seed=seed, prune_first=prune_first)


def evaluate(keep_scores: torch.Tensor, kept: torch.Tensor, cover_result: Cover, pairs: torch.Tensor, ratio: float,
             natural: float = math.nan) -> dict:
    """Agreement of the keep scores with the cover ranking, and the duplicates the kept set drops."""
    untied = -redundancy_rank(cover_result)
    any_pruned, both_pruned = duplicate_drop(kept, pairs)
    return {
        "natural_ratio": natural,
        "agreement": agreement(keep_scores, cover_result.degree, ratio),
        "agreement_rank": _overlap(keep_scores, untied, ratio),
        "dup_any": any_pruned,
        "dup_both": both_pruned,
    }


def decide(hook: SelectorHook, ratio: float, seed: int, passes: int = 2, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor, float]:
    """RL-Selector's default decision: the policy read out in order (its price re-set for the
    read-out), the band enforced by the final scores when the share still misses it. Returns (keep
    scores, kept mask, natural ratio); the read-out's record (the first sweep's share, the price
    shift) is left in ``hook.readout_record``."""
    natural_mask, scores, hook.readout_record = hook.readout(None, passes=passes, chunk=chunk, seed=seed)
    kept = torch.zeros(len(scores), dtype=torch.bool)
    kept[torch.from_numpy(band_decision(scores.double().numpy(), ratio, natural=natural_mask.numpy())[0])] = True
    natural = float(natural_mask.float().mean())
    return scores, kept, natural


def _overlap(keep_scores: torch.Tensor, reference: torch.Tensor, ratio: float) -> float:
    k = int(round(ratio * keep_scores.shape[0]))
    ours = set(torch.topk(keep_scores, k).indices.tolist())
    return len(ours & set(torch.topk(reference, k).indices.tolist())) / k


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--ratios", nargs="+", type=float, default=[0.3, 0.5, 0.7, 0.8, 0.9])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eps-rule", default="quantile", choices=["mean", "quantile", "median", "nn-median"])
    parser.add_argument("--eps-quantile", type=float, default=0.01)
    parser.add_argument("--history", action="store_true", help="print the per-epoch diagnostics too")
    parser.add_argument("--reference-size", type=int, default=REFERENCE_SIZE, help="states whose decisions measure the kept share (rl-selector's reference_size)")
    parser.add_argument("--readouts", nargs="+", default=[READOUT], metavar="PASSESxCHUNK",
                        help="read-outs of each trained agent, e.g. 2x64 1x64 2x256 (rl-selector's readout_passes x readout_chunk); "
                             "one row each, the agent trained once")
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    results = []
    print(f"{'variant':<22}{'ratio':>6}{'seed':>5}{'natural':>9}{'agree':>7}{'agr-rank':>9}{'dup≥1':>7}{'dup2':>6}{'rand≥1':>7}{'EV':>7}{'s':>6}")
    for seed in args.seeds:
        data = make_synthetic(seed=seed)
        eps = epsilon(data.features, data.labels, rule=args.eps_rule, quantile=args.eps_quantile)
        cover_result = cover(data.features, data.labels, eps)
        for ratio in args.ratios:
            for name, scores in (
                ("cover-oracle", -redundancy_rank(cover_result).float()),
                ("set-aware-oracle", set_aware_keep(data, eps, ratio, seed).float()),
                ("random", torch.rand(len(data.labels), generator=torch.Generator().manual_seed(seed))),
            ):
                row = evaluate(scores, top_mask(scores, ratio), cover_result, data.duplicate_pairs, ratio)
                row.update(variant=name, ratio=ratio, seed=seed)
                results.append(row)
                print(f"{name:<22}{ratio:>6.2f}{seed:>5}{'':>9}{row['agreement']:>7.3f}{row['agreement_rank']:>9.3f}"
                      f"{row['dup_any']:>7.3f}{row['dup_both']:>6.3f}{1 - ratio**2:>7.3f}")
            for name in args.variants:
                start = time.perf_counter()
                config, broken = VARIANTS[name], name == "shuffled-reward"
                hook = train_agent(data.features, data.labels, ratio, config, epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                                   eps_rule=args.eps_rule, eps_quantile=args.eps_quantile, shuffled_reward=broken,
                                   reference_size=args.reference_size)
                seconds = time.perf_counter() - start
                for readout in args.readouts:
                    passes, chunk = (int(part) for part in readout.split("x"))
                    started = time.perf_counter()
                    scores, kept, natural = decide(hook, ratio, seed, passes=passes, chunk=chunk)
                    row = evaluate(scores, kept, cover_result, data.duplicate_pairs, ratio, natural)
                    explained = [h["explained_variance"] for h in hook.history if not math.isnan(h["explained_variance"])]
                    label = name if args.readouts == [READOUT] else f"{name} {readout}"
                    row.update(variant=label, ratio=ratio, seed=seed, seconds=seconds, readout_seconds=time.perf_counter() - started,
                               readouts=hook.readout_record["readouts"], explained_variance=explained[-1] if explained else math.nan,
                               history=hook.history, first_share=hook.readout_record["first_share"], price_shift=hook.readout_record["price_shift"])
                    results.append(row)
                    print(f"{label:<22}{ratio:>6.2f}{seed:>5}{natural:>9.3f}{row['agreement']:>7.3f}{row['agreement_rank']:>9.3f}"
                          f"{row['dup_any']:>7.3f}{row['dup_both']:>6.3f}{1 - ratio**2:>7.3f}{row['explained_variance']:>7.2f}{seconds:>6.1f}"
                          f"  read-out {row['readout_seconds']:.1f} s, {row['readouts']} sweep(s)", flush=True)
                if args.history:
                    for h in hook.history:
                        print("   ", {k: round(v, 4) if isinstance(v, float) else v for k, v in h.items()})
    print()
    print(markdown_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


def markdown_table(results: list[dict]) -> str:
    """One row per variant, one cell per ratio: natural ratio / agreement / duplicate pairs hit
    (means over seeds; ``—`` where there is no policy)."""
    ratios = sorted({r["ratio"] for r in results})
    variants = list(dict.fromkeys(r["variant"] for r in results))
    lines = [
        "| variant | " + " | ".join(f"{ratio:g}" for ratio in ratios) + " |",
        "|---|" + "---|" * len(ratios),
    ]
    for variant in variants:
        cells = []
        for ratio in ratios:
            rows = [r for r in results if r["variant"] == variant and r["ratio"] == ratio]
            mean = {key: sum(r[key] for r in rows) / len(rows) for key in ("natural_ratio", "agreement_rank", "dup_any")}
            natural = "—" if variant in ORACLES else f"{mean['natural_ratio']:.3f}"
            cells.append(f"{natural} / {mean['agreement_rank']:.2f} / {mean['dup_any']:.2f}")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
