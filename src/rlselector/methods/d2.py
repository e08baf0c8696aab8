"""D2 pruning: message passing on a kNN graph to balance difficulty and diversity.

Maharana, Yadav & Bansal, "D2 Pruning: Message Passing for Balancing Diversity and Difficulty in
Data Pruning", ICLR 2024 (arXiv:2310.07931); released code github.com/adymaharana/d2pruning
(``selection_mp.py`` coreset-mode ``class``, ``core/data/sampling.py`` ``GraphDensitySampler`` with
graph-mode ``sum`` and graph-sampling-mode ``weighted``; the README's CIFAR-10 recipe: k = 5,
γ = 0.1, forgetting scores, AUM mislabel cutoff, one graph per class).

1. Mislabel cutoff: the ``int(β·N)`` samples of lowest AUM (summed probability margins, as CCS)
   are removed before any graph is built.
2. Graph, per class: each sample is linked to its ``neighbours`` nearest samples of its class
   (Euclidean distance d, exact, computed in row blocks: a sparse graph, never the released code's
   dense N × N one), and the links are made symmetric: i and j are neighbours when either is among
   the other's k nearest.
3. Forward message passing: ``s_i ← s_i + Σ_{j∈N(i)} exp(−γ_f·d_ij)·max(s_j, 1e-7)`` with γ_f = 1 (the
   released code's ``exp(−distance)``): a hard sample in a dense hard region scores high.
4. Reverse message passing during greedy selection: pick the highest score, then
   ``s_j ← s_j − exp(−γ_r·d_ij)·s_i`` for its neighbours (γ_r = 0.1), so the next picks come from
   elsewhere.

Difficulty (``difficulty``), from the proxy run (``selection.scores``): ``forgetting`` events (the
README's choice; never-learnt samples count 0, as the released ``generate_importance_score.py``
counts them), ``el2n`` at the proxy's early epoch, the mean training ``loss`` over epochs, or
``uniform`` (every node 1: pure density/diversity, for when only ``--features`` are given and no
proxy should be trained; no cutoff then).

Per class, the budget is split equally over the classes left after the cutoff, the sparsest class
first (the code's ``bin_allocate``; proportional quotas under ``--class-balanced``). Differences from
the released code, each a parameter or stated: a class of at most k samples still gets a graph (each
linked to all its others; the code samples such a class at random); β follows CCS's schedule
(``beta``; the README's one run at 90 % pruned uses 0.4); ``per_class=False`` builds one graph over
the whole set (the code's mode ``graph``).
Keep priority: reverse selection order; never-picked samples rank below, by their final score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..selection import scores
from ..selection.distances import centred, knn
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.policies import class_quotas, cutoff_rate, equal_shares, lowest
from ..progress import step_progress

DIFFICULTIES = ("forgetting", "el2n", "loss", "uniform")
FLOOR = 1e-7
"""Least difficulty a neighbour passes forward (the released code's epsilon)."""
PROGRESS_EVERY = 1024


def knn_graph(features: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse symmetric kNN graph: i–j is an edge when either is among the other's ``k`` nearest;
    values are the Euclidean distances (explicit zeros kept for duplicates)."""
    n = features.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float64)
    neighbours, sq_dist = knn(centred(features), k)
    rows = np.repeat(np.arange(n), k)
    keys = np.concatenate([rows * n + neighbours.ravel(), neighbours.ravel() * n + rows])
    keys, first = np.unique(keys, return_index=True)
    distance = np.sqrt(np.concatenate([sq_dist.ravel(), sq_dist.ravel()]))[first]
    indptr = np.searchsorted(keys // n, np.arange(n + 1))
    return sp.csr_matrix((distance, keys % n, indptr), shape=(n, n))


def kernel(graph: sp.csr_matrix, gamma: float) -> sp.csr_matrix:
    """The same graph with edge values exp(−γ·d)."""
    weights = graph.copy()
    weights.data = np.exp(-gamma * graph.data)
    return weights


def d2_order(difficulty: np.ndarray, graph: sp.csr_matrix, budget: int, gamma_forward: float, gamma_reverse: float, *, advance=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D2 greedy selection: ``(picks in order, forward-passed scores, final scores)``."""
    n = len(difficulty)
    if not 0 <= budget <= n:
        raise ValueError(f"budget must lie in [0, {n}], got {budget}")
    difficulty = np.asarray(difficulty, dtype=np.float64)
    forward = difficulty + kernel(graph, gamma_forward) @ np.maximum(difficulty, FLOOR)
    reverse = kernel(graph, gamma_reverse)
    current = forward.copy()
    order = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        pick = int(np.argmax(current))
        order[t] = pick
        lo, hi = reverse.indptr[pick], reverse.indptr[pick + 1]
        current[reverse.indices[lo:hi]] -= reverse.data[lo:hi] * current[pick]
        current[pick] = -np.inf
        if advance is not None and (t + 1) % PROGRESS_EVERY == 0:
            advance(PROGRESS_EVERY)
    if advance is not None:
        advance(budget % PROGRESS_EVERY)
    return order, forward, current


@register_method
class D2Pruning(SelectionMethod):
    name = "d2"
    summary = "D2 pruning: AUM cutoff, then forward/reverse message passing on a per-class kNN graph (difficulty + diversity)"
    inputs = ("features", "proxy")
    reference = "Maharana, Yadav & Bansal, D2 Pruning, ICLR 2024 (github.com/adymaharana/d2pruning)"

    @dataclass
    class Params:
        neighbours: int = param(5, "k of the kNN graph (the released README's 5)", ge=1)
        gamma_forward: float = param(1.0, "γ_f of the forward weight exp(-γ·d) on Euclidean distances (the released code's 1)", ge=0)
        gamma_reverse: float = param(0.1, "γ_r of the reverse weight exp(-γ·d) (the released README's 0.1)", ge=0)
        difficulty: str = param("forgetting", "node difficulty: forgetting, el2n or loss (from the proxy run), uniform (features only, no proxy)", choices=DIFFICULTIES)
        beta: float | None = param(None, "share of lowest-AUM samples cut before the graph; None = CCS's schedule by pruning rate "
                                         "(0 with uniform difficulty)", ge=0, lt=1)
        per_class: bool = param(True, "one graph and quota per class (the README's coreset-mode class); False = one graph over "
                                      "the whole set (per class anyway under --class-balanced)")

    def cutoff(self, ctx: SelectionContext) -> float:
        """β: the parameter, else CCS's schedule (0 when the difficulty needs no proxy)."""
        if self.params.beta is not None:
            return self.params.beta
        return 0.0 if self.params.difficulty == "uniform" else cutoff_rate(ctx.ratio)

    def validate(self, ctx: SelectionContext) -> None:
        p = self.params
        if ctx.features is None or p.difficulty != "uniform" or self.cutoff(ctx) > 0:
            ctx.check_proxy_inputs(
                self.name,
                features=(None,) if ctx.features is None else (),
                logits=(None,) if p.difficulty == "el2n" else (),
                min_epochs=2 if p.difficulty == "forgetting" else 1,
            )
        if self.cutoff(ctx) > 0 and ctx.dynamics is not None and ctx.dynamics.prob_margin is None:
            raise InputError(f"method {self.name!r}: {ctx.dynamics.source} has no field 'prob_margin' (E x N) for the AUM "
                             f"cutoff; add it or pass -p beta=0")

    def difficulty(self, ctx: SelectionContext) -> np.ndarray:
        kind = self.params.difficulty
        if kind == "uniform":
            return np.ones(len(ctx.dataset))
        record = ctx.proxy()
        if kind == "forgetting":
            return scores.forgetting_counts(record.correct).astype(np.float64)
        if kind == "el2n":
            return scores.el2n(record.logits_at(record.early_epoch), ctx.labels)
        return np.asarray(record.loss, dtype=np.float64).mean(axis=0)

    def groups(self, ctx: SelectionContext) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
        """``(members, quota)`` per graph after the AUM cutoff, and the cut indices. The cut is global
        and the budget is split equally over the classes left, sparsest first (the released code's
        ``bin_allocate``); under ``--class-balanced`` quotas follow the full classes' sizes and each
        class is cut on its own."""
        n, k, labels = len(ctx.dataset), ctx.budget, ctx.labels
        beta = self.cutoff(ctx)
        margin = scores.accumulated_margin(ctx.proxy().prob_margin) if beta > 0 else np.zeros(n)
        if ctx.class_balanced:
            quotas = class_quotas(labels, k, ctx.dataset.num_classes)
            members = [np.flatnonzero(labels == c) for c in range(ctx.dataset.num_classes)]
            cuts = [m[lowest(margin[m], min(int(beta * len(m)), len(m) - int(q)))] for m, q in zip(members, quotas)]
            cut = np.sort(np.concatenate(cuts))
            return [(np.setdiff1d(m, c), int(q)) for m, c, q in zip(members, cuts, quotas)], cut
        cut = lowest(margin, min(int(beta * n), n - k))
        remaining = np.setdiff1d(np.arange(n), cut)
        if not self.params.per_class:
            return [(remaining, k)], cut
        members = [remaining[labels[remaining] == c] for c in range(ctx.dataset.num_classes)]
        quotas = equal_shares(np.array([len(m) for m in members]), k)
        return [(m, int(q)) for m, q in zip(members, quotas)], cut

    def run(self, ctx: SelectionContext) -> MethodResult:
        features = np.asarray(ctx.embeddings(), dtype=np.float32)
        difficulty = self.difficulty(ctx)
        n = features.shape[0]
        groups, cut = self.groups(ctx)
        priority = np.full(n, -1.0)  # cut samples rank lowest
        raw = np.zeros(n, dtype=np.float64)
        kept = []
        with step_progress("d2", ctx.budget, enabled=ctx.progress) as advance:
            for members, quota in groups:
                if len(members) == 0:
                    continue
                graph = knn_graph(features if len(members) == n else features[members], self.params.neighbours)
                order, forward, final = d2_order(
                    difficulty[members], graph, quota, self.params.gamma_forward, self.params.gamma_reverse, advance=advance
                )
                raw[members] = forward
                ranks = np.empty(len(members))
                ranks[np.argsort(final, kind="stable")] = np.arange(len(members))
                priority[members] = ranks / len(members)
                priority[members[order]] = 1.0 + (quota - np.arange(quota)) / max(quota, 1)
                kept.append(members[order])
        indices = np.sort(np.concatenate(kept)) if kept else np.empty(0, dtype=np.int64)
        return MethodResult(
            scores=priority,
            indices=indices,
            raw_scores=raw,
            info={"difficulty": self.params.difficulty, "raw_score": "forward message-passing score", "beta": self.cutoff(ctx), "cut": int(len(cut))},
        )
