"""cover-static: RL-Selector without RL (the paper's ablation, ``docs/method.md`` §5).

Train the target network on the full set with the same recipe as RL-Selector, compute the
ε-sample cover once from its final penultimate features (eval mode, no augmentation), and keep the
samples with the smallest degree of cover. Ties in the degree (common at a small ε) are broken by the
distance to the nearest same-class neighbour in units of ε (farther = less redundant). With
``set_aware`` the pruning runs in rounds and re-counts the cover among the still-kept samples, so of
two mutual covers only one goes (Lemma 2). With ``--features`` the cover is computed on those.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cover import EPSILON_RULES, cover, epsilon, greedy_set_aware_prune, redundancy_rank
from ..data.transforms import BatchTransform
from ..errors import InputError
from ..recipes import RECIPES
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.policies import apply_policy
from ..selection.target import check_cover_inputs, target_description, target_recipe, train_target
from ..train import forward_split

@register_method
class CoverStatic(SelectionMethod):
    name = "cover-static"
    summary = "RL-Selector's ablation without RL: keep the least ε-covered samples of a trained target network"
    inputs = ("target-training",)
    reference = "Yang, Li, Shen, Zhao. RL-Selector (ICCV 2025), ablation 'w/o RL'."

    @dataclass
    class Params:
        recipe: str = param("cpu", "recipe of the target network (the same recipes as rl-selector)", choices=RECIPES)
        epochs: int | None = param(None, "target epochs (None = the recipe's)", ge=1)
        epsilon_rule: str = param("quantile", "ε per class: quantile (of intra-class distances), mean, median, nn-median", choices=EPSILON_RULES)
        epsilon_quantile: float = param(0.01, "the quantile of the 'quantile' rule", gt=0, lt=1)
        set_aware: bool = param(False, "prune in rounds, re-counting cover among the kept (Lemma 2)")
        round_size: int = param(300, "samples pruned per round when set_aware", ge=1)
        random_uncovered: bool = param(False, "set_aware: prune the samples no kept neighbour covers in seeded random order, not by closeness")

    def validate(self, ctx: SelectionContext) -> None:
        p = self.params
        if p.random_uncovered and not p.set_aware:
            raise InputError("cover-static: random_uncovered orders the set-aware pruning; add set_aware=true")
        check_cover_inputs(self.name, ctx.dataset)

    def features(self, ctx: SelectionContext) -> np.ndarray:
        """The target's final features: given, cached in ``ctx.cache_dir`` (they do not depend on the
        ratio, so a grid of ratios trains the target once per seed), or from a fresh training run."""
        if ctx.features is not None:
            return ctx.features
        named, recipe = target_recipe(self.params.recipe, self.params.epochs, ctx.seed)
        cache = ctx.cache
        # keyed by the data's fingerprint, the target model and the full recipe
        entry = cache.path("target-features", ctx.dataset, f"{named.name}-seed{ctx.seed}",
                           [ctx.dataset.fingerprint, target_description(named, ctx.model, recipe.epochs), recipe.identity()]) if cache else None
        stored = cache.load(entry) if cache else None
        if stored is not None:
            ctx.cost.reused_s = float(stored["seconds"])  # charged to the cost as if trained: this selection alone
            return stored["features"]
        model, result = train_target(ctx.dataset, named, recipe, workdir=ctx.workdir, resume=ctx.resume, progress=ctx.progress, factory=ctx.model,
                                     runtime=ctx.runtime)
        ctx.cost.target_s = result.seconds
        features, _ = forward_split(model, ctx.dataset.train, BatchTransform.for_dataset(ctx.dataset, augment=False))
        if cache:
            cache.store(entry, features=features, seconds=np.float64(result.seconds))
        return features

    def run(self, ctx: SelectionContext) -> MethodResult:
        p = self.params
        features, labels = self.features(ctx), ctx.labels
        eps = epsilon(features, labels, rule=p.epsilon_rule, quantile=p.epsilon_quantile, seed=ctx.seed)
        result = cover(features, labels, eps)
        degree = result.degree.numpy()
        info = {"epsilon": {ctx.dataset.classes[k]: v for k, v in eps.items()}}
        if p.set_aware:
            kept_mask = np.zeros(len(labels), dtype=bool)
            for members, quota in ctx.budget_groups(per_class=ctx.class_balanced):
                kept_mask[members] = greedy_set_aware_prune(
                    features[members], labels[members], eps, keep=max(quota, 1), round_size=p.round_size, seed=ctx.seed,
                    random_uncovered=p.random_uncovered,
                ).numpy()
            kept = np.flatnonzero(kept_mask)
            priority = -redundancy_rank(result).numpy()
            priority[kept] += 2.0  # kept ones first; within each group the static redundancy order
            return MethodResult(scores=priority, indices=kept, raw_scores=degree, info=info)
        # least redundant first: keep-highest on minus the redundancy rank (degree, then closeness)
        labels_for_policy = labels if ctx.class_balanced else None
        kept, priority = apply_policy("keep-lowest", redundancy_rank(result).numpy(), ctx.budget, ctx.rng("policy"),
                                      labels=labels_for_policy, num_classes=ctx.dataset.num_classes)
        return MethodResult(scores=priority, indices=kept, raw_scores=degree, info=info)
