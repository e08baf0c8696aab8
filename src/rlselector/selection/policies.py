"""Policies turn a score into a subset (dPrune's split: a score is one thing, the policy another).

Every policy returns a *keep priority*: a vector whose top-``k`` is the policy's subset, so the
output is always "higher = keep" whatever the score meant. Ties break by index (stable), and
policies that sample draw only from the generator they are given.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

BAND = 0.01
"""Achieved ratios must lie within ±1 percentage point of the requested one (the paper's band)."""

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


def ranks01(values: np.ndarray) -> np.ndarray:
    """Ranks scaled into [0, 1): a bounded, order-preserving, finite tie-breaker (ties by index)."""
    n = len(values)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(np.asarray(values, dtype=np.float64), kind="stable")] = np.arange(n)
    return ranks / max(n, 1)


def lift_kept(order: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """A keep priority whose top-|kept| is exactly ``kept``: ``order`` (values in [0, 1), e.g.
    :func:`ranks01` or keep probabilities) with the kept samples lifted one unit above the rest."""
    priority = np.asarray(order, dtype=np.float64).copy()
    priority[kept] += 1.0
    return priority


def band_decision(scores: np.ndarray, ratio: float, natural: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Kept indices from deterministic scores: the natural decisions (``natural``, a bool mask; default
    score ≥ 0.5), or the top-k of the scores with k clipped into the ±1 % band when the natural count
    falls outside it; and whether the band had to be enforced."""
    n = len(scores)
    natural = np.asarray(scores >= 0.5 if natural is None else natural, dtype=bool)
    count = int(natural.sum())
    low, high = max(1, math.ceil((ratio - BAND) * n - 1e-9)), min(n, math.floor((ratio + BAND) * n + 1e-9))
    if low <= count <= high:
        return np.flatnonzero(natural), False
    k = min(max(count, low), high)
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[:k]), True


def policy_sample(keep_probability: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` sorted indices drawn without replacement, each draw with chance proportional to the
    keep probability among those left (Efraimidis–Spirakis: the top-``count`` of log(u) / p)."""
    weights = np.maximum(keep_probability, np.finfo(np.float64).tiny)  # p = 0 sorts last instead of dividing by 0
    keys = np.log(rng.random(len(weights))) / weights
    return np.sort(np.argsort(-keys, kind="stable")[:count])


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


@register_policy("rank-band")
def keep_middle_ranks(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Moderate-DS's released rule: sort the scores and keep the ``k`` middle ranks, from rank
    ``round((n − k) / 2)`` on (the band [n(½ − r/2), n(½ + r/2)) of ``selection.py``, ``r = k/n``; ties
    in score by index). Unlike ``band`` it ignores how far the values lie from the median."""
    n = len(scores)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")] = np.arange(n)
    centre = round((n - k) / 2) + (k - 1) / 2  # Python's round, as the released code
    return -np.abs(ranks - centre)


@register_policy("random")
def keep_random(scores: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(len(scores))


@register_policy("stratified")
def keep_stratified(scores: np.ndarray, k: int, rng: np.random.Generator, strata: int = 50) -> np.ndarray:
    """CCS: split the score range into equal-width strata, then fill the budget from the sparsest
    stratum up, giving each remaining stratum an equal share and sampling uniformly inside it."""
    scores = np.asarray(scores, dtype=np.float64)
    edges = np.linspace(scores.min(), scores.max(), strata + 1)
    stratum = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, strata - 1)
    members = [np.flatnonzero(stratum == s) for s in range(strata)]
    members = sorted((m for m in members if len(m)), key=len)
    takes = equal_shares(np.array([len(m) for m in members]), k)  # they sum to k (k ≤ n)
    kept = [rng.choice(group, size=int(take), replace=False) for group, take in zip(members, takes)]
    kept = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    return lift_kept(ranks01(scores), kept)


def equal_shares(sizes: np.ndarray, k: int) -> np.ndarray:
    """Budgets of groups of these ``sizes`` (same order) summing to min(k, Σ sizes): from the smallest
    group up, each takes an equal share of what is left and never more than it holds (``bin_allocate``
    of CCS's strata and of D2's classes; ties in size by position). The last group takes all that is
    left, so nothing is over unless every group is full."""
    sizes = np.asarray(sizes, dtype=np.int64)
    takes = np.zeros(len(sizes), dtype=np.int64)
    left = int(k)
    for position, group in enumerate(np.argsort(sizes, kind="stable")):
        takes[group] = min(int(sizes[group]), left // (len(sizes) - position))
        left -= int(takes[group])
    return takes


def cutoff_rate(ratio: float) -> float:
    """CCS's hard-cutoff rate β for a kept share ``ratio`` (the paper's CIFAR-10 settings, its README's
    90 % run): 0 up to 50 % pruned, 0.1 up to 80 %, 0.3 beyond."""
    pruned = 1.0 - ratio
    if pruned <= 0.5 + 1e-9:
        return 0.0
    if pruned <= 0.8 + 1e-9:
        return 0.1
    return 0.3


def lowest(values: np.ndarray, count: int) -> np.ndarray:
    """Sorted indices of the ``count`` lowest values, ties to the lower index: the mislabel mask of
    CCS and D2 (``mislabel_mask``: the lowest accumulated margins go first)."""
    return np.sort(np.argsort(np.asarray(values, dtype=np.float64), kind="stable")[: max(int(count), 0)])


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
        priority[members] = lift_kept(ranks01(local), chosen)
    return np.sort(np.concatenate(kept)), priority
