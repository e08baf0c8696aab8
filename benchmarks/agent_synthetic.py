"""Does the RL-Selector agent converge? Fixed synthetic features, no target network (method.md §9).

6,000 samples: 10 Gaussian classes of varied spread (500 each, d = 64) plus 1,000 near-duplicates
of random members. The cover is computed once (the features do not move); the agent then runs the
per-minibatch loop of method.md §4 for a number of epochs. Reported per ratio and agent variant:

- natural ratio: share with deterministic score ≥ 0.5, before any band enforcement;
- agreement (``agr-rank``): share of the policy's top-sr·N among the sr·N least redundant by the
  untied redundancy rank (degree, then nearest-neighbour closeness); chance = sr. ``agree`` counts
  against the degree alone, ties resolved in the policy's favour (its chance is the ``random`` row);
- duplicate pairs with a member pruned (policy's top-sr·N kept) and with both pruned, next to a
  random selection's expected share 1 − sr².

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

from rlselector.agent import AgentConfig, SelectorAgent, normalised_cover
from rlselector.cover import Cover, cover, epsilon, greedy_set_aware_prune, redundancy_rank

VARIANTS: dict[str, AgentConfig] = {
    "default": AgentConfig(),
    "paper-literal": AgentConfig.paper_literal(),
    "method-9": AgentConfig.method_9(),
    # One lever of the default changed at a time:
    "updates-16": AgentConfig(updates_per_step=16),
    "a2c-critic": AgentConfig(estimator="critic"),
    "a2c-critic-8": AgentConfig(estimator="critic", action_samples=8),
    "dual-ascent": AgentConfig(ratio_control="dual-ascent"),
    "penalty": AgentConfig(ratio_control="penalty"),
    "batch-feedback": AgentConfig(ratio_feedback="batch-decisions"),
    "no-averaging": AgentConfig(decision_ema=0.0),
    "constant-lr": AgentConfig(final_lr_fraction=1.0),
    "no-entropy": AgentConfig(entropy_coef=0.0),
    "weight-decay": AgentConfig(weight_decay=5e-4),
    "centred-cover": AgentConfig(cover_signal="centred"),
    "raw-states": AgentConfig(normalize_states=False),
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
    cover_result: Cover,
    target_ratio: float,
    config: AgentConfig,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    reference_size: int = 4096,
) -> tuple[SelectorAgent, list[dict]]:
    """The per-minibatch loop of method.md §4 on fixed features; returns the agent and per-epoch means.

    Each step also hands the agent ``reference_size`` random rows (its ratio feedback in the default)
    and the kept share of the paper's score vector (the literal feedback)."""
    n = features.shape[0]
    batches_per_epoch = math.ceil(n / batch_size)
    agent = SelectorAgent(features.shape[1], target_ratio, config, seed=seed, total_steps=epochs * batches_per_epoch)
    cover_hat = normalised_cover(cover_result, target_ratio, config.cover_signal)
    scores = torch.ones(n)  # the paper's dataset-wide score vector, s ← 1 at the start
    generator = torch.Generator().manual_seed(seed + 2)
    history = []
    for epoch in range(epochs):
        steps = []
        for batch in torch.randperm(n, generator=generator).split(batch_size):
            reference = features[torch.randperm(n, generator=generator)[:reference_size]]
            kept_fraction = float((scores >= 0.5).float().mean())
            actions, stats = agent.step(
                features[batch], cover_hat[batch], reference_states=reference, kept_fraction=kept_fraction
            )
            scores[batch] = actions
            steps.append(dataclasses.asdict(stats))
        history.append({key: _nanmean([s[key] for s in steps]) for key in steps[0]})
        history[-1]["natural_ratio"] = float((agent.keep_scores(features) >= 0.5).float().mean())
        history[-1]["epoch"] = epoch
    agent.finish()
    return agent, history


def agreement(keep_scores: torch.Tensor, degree: torch.Tensor, ratio: float) -> float:
    """Share of the top-k by keep score that is among the k least covered, ties in C in its favour."""
    n = degree.shape[0]
    k = int(round(ratio * n))
    chosen = torch.topk(keep_scores, k).indices
    threshold = torch.kthvalue(degree, k).values
    strictly_below = int((degree < threshold).sum())
    chosen_degree = degree[chosen]
    return (int((chosen_degree < threshold).sum()) + min(int((chosen_degree == threshold).sum()), k - strictly_below)) / k


def duplicate_drop(keep_scores: torch.Tensor, pairs: torch.Tensor, ratio: float) -> tuple[float, float]:
    """(share of pairs with ≥ 1 member pruned, share with both pruned) when the top-sr·N are kept."""
    n = keep_scores.shape[0]
    kept = torch.zeros(n, dtype=torch.bool)
    kept[torch.topk(keep_scores, int(round(ratio * n))).indices] = True
    pruned = ~kept[pairs]
    return float(pruned.any(1).float().mean()), float(pruned.all(1).float().mean())


ORACLES = ("cover-oracle", "set-aware-oracle", "random")
"""Rows without an agent: the exact cover ranking, its set-aware greedy pruning, a random subset."""


def set_aware_keep(data: SyntheticData, eps: dict[int, float], ratio: float, seed: int,
                   prune_first: torch.Tensor | None = None) -> torch.Tensor:
    """The set-aware greedy pruning of ``cover.greedy_set_aware_prune`` (rounds of 5 % of the set),
    by the cover's own order or by ``prune_first`` (a policy's keep scores)."""
    n = len(data.labels)
    return greedy_set_aware_prune(data.features, data.labels, eps, keep=int(round(ratio * n)), round_size=max(1, n // 20),
                                  seed=seed, prune_first=prune_first)


def evaluate(keep_scores: torch.Tensor, cover_result: Cover, pairs: torch.Tensor, ratio: float) -> dict:
    untied = -redundancy_rank(cover_result)
    any_pruned, both_pruned = duplicate_drop(keep_scores, pairs, ratio)
    return {
        "natural_ratio": float((keep_scores >= 0.5).float().mean()),
        "agreement": agreement(keep_scores, cover_result.degree, ratio),
        "agreement_rank": _overlap(keep_scores, untied, ratio),
        "dup_any": any_pruned,
        "dup_both": both_pruned,
    }


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
    parser.add_argument("--set-aware-decision", action="store_true",
                        help="also read each policy off by set-aware greedy pruning (rl-selector's decision='set-aware')")
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    results = []
    print(f"{'variant':<16}{'ratio':>6}{'seed':>5}{'natural':>9}{'agree':>7}{'agr-rank':>9}{'dup≥1':>7}{'dup2':>6}{'rand≥1':>7}{'s':>6}")
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
                row = evaluate(scores, cover_result, data.duplicate_pairs, ratio)
                row.update(variant=name, ratio=ratio, seed=seed)
                results.append(row)
                print(
                    f"{name:<16}{ratio:>6.2f}{seed:>5}{'':>9}{row['agreement']:>7.3f}{row['agreement_rank']:>9.3f}"
                    f"{row['dup_any']:>7.3f}{row['dup_both']:>6.3f}{1 - ratio**2:>7.3f}"
                )
            for name in args.variants:
                start = time.perf_counter()
                agent, history = train_agent(
                    data.features, cover_result, ratio, VARIANTS[name],
                    epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                )
                seconds = time.perf_counter() - start
                keep_scores = agent.keep_scores(data.features)
                decisions = {name: keep_scores}
                if args.set_aware_decision:  # the same policy read off by set-aware greedy pruning
                    decisions[f"{name}+set-aware"] = set_aware_keep(data, eps, ratio, seed, prune_first=keep_scores).float()
                for label, scores in decisions.items():
                    row = evaluate(scores, cover_result, data.duplicate_pairs, ratio)
                    row.update(variant=label, ratio=ratio, seed=seed, seconds=seconds, history=history)
                    results.append(row)
                    print(
                        f"{label:<16}{ratio:>6.2f}{seed:>5}{row['natural_ratio']:>9.3f}{row['agreement']:>7.3f}"
                        f"{row['agreement_rank']:>9.3f}{row['dup_any']:>7.3f}{row['dup_both']:>6.3f}{1 - ratio**2:>7.3f}{seconds:>6.1f}",
                        flush=True,
                    )
                if args.history:
                    for h in history:
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
