"""Policies turn a score into a subset (dPrune's split: a score is one thing, the policy another).

Every policy returns a *keep priority*: a vector whose top-``k`` is the policy's subset, so the
output is always "higher = keep" whatever the score meant. Ties break by index (stable), and
policies that sample draw only from the generator they are given.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

Policy = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
POLICIES: dict[str, Policy] = {}


def register_policy(name: str):
    def wrap(fn: Policy) -> Policy:
        POLICIES[name] = fn
        return fn

    return wrap


def top_k(priority: np.ndarray, k: int) -> np.ndarray:
    """Sorted indices of the ``k`` highest priorities; equal priorities go to the lower index."""
    order = np.argsort(-np.asarray(priority, dtype=np.float64), kind="stable")
    return np.sort(order[:k])


def _ranks01(values: np.ndarray) -> np.ndarray:
    """Ranks scaled into [0, 1): order-preserving, finite, ties by index."""
    n = len(values)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(values, kind="stable")] = np.arange(n)
    return ranks / max(n, 1)


def _priority_from_subset(kept: np.ndarray, n: int, tie: np.ndarray) -> np.ndarray:
    """A priority whose top-|kept| is exactly ``kept``: kept samples sit one unit above the rest."""
    priority = _ranks01(tie)
    priority[kept] += 1.0
    return priority


@register_policy("keep-highest")
def keep_highest(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.asarray(scores, dtype=np.float64).copy()


@register_policy("keep-lowest")
def keep_lowest(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return -np.asarray(scores, dtype=np.float64)


@register_policy("band")
def keep_median_band(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Moderate-DS: keep the ``k`` samples whose score lies closest to the median score."""
    scores = np.asarray(scores, dtype=np.float64)
    return -np.abs(scores - np.median(scores))


@register_policy("random")
def keep_random(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(scores))


@register_policy("stratified")
def keep_stratified(scores: np.ndarray, k: int, rng: np.random.Generator, strata: int = 50) -> np.ndarray:
    """CCS: split the score range into equal-width strata, then fill the budget from the sparsest
    stratum up, giving each remaining stratum an equal share and sampling uniformly inside it."""
    scores = np.asarray(scores, dtype=np.float64)
    n = len(scores)
    edges = np.linspace(scores.min(), scores.max(), strata + 1)
    stratum = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, strata - 1)
    members = [np.flatnonzero(stratum == s) for s in range(strata)]
    members = sorted((m for m in members if len(m)), key=len)
    kept, budget = [], k
    for position, group in enumerate(members):
        share = budget // (len(members) - position)
        take = min(len(group), share)
        kept.append(rng.choice(group, size=take, replace=False))
        budget -= take
    kept = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    if budget > 0:  # integer division left a few over: give them to random unkept samples
        rest = np.setdiff1d(np.arange(n), kept)
        kept = np.concatenate([kept, rng.choice(rest, size=budget, replace=False)])
    return _priority_from_subset(kept, n, scores)


def class_quotas(labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
    """Per-class budgets proportional to class sizes, summing to exactly ``k`` (largest remainder)."""
    counts = np.bincount(labels, minlength=num_classes)
    exact = k * counts / counts.sum()
    quotas = np.floor(exact).astype(np.int64)
    remainder = k - quotas.sum()
    order = np.argsort(-(exact - quotas), kind="stable")
    quotas[order[:remainder]] += 1
    return np.minimum(quotas, counts)


def apply_policy(
    policy: str,
    scores: np.ndarray,
    k: int,
    rng: np.random.Generator,
    *,
    labels: np.ndarray | None = None,
    num_classes: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``policy`` globally, or per class with proportional quotas when ``labels`` is given.

    Returns ``(kept indices, keep priority)`` with ``kept == top_k(priority, k)``.
    """
    fn = POLICIES[policy]
    if labels is None:
        priority = fn(scores, k, rng)
        return top_k(priority, k), priority
    priority = np.empty(len(scores), dtype=np.float64)
    kept = []
    for cls, quota in enumerate(class_quotas(labels, k, num_classes)):
        members = np.flatnonzero(labels == cls)
        local = fn(scores[members], int(quota), rng)
        chosen = top_k(local, int(quota))
        kept.append(members[chosen])
        # within-class order preserved, kept ones lifted above every unkept sample of any class
        priority[members] = _ranks01(local)
        priority[members[chosen]] += 1.0
    return np.sort(np.concatenate(kept)), priority
