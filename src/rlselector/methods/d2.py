"""D2 pruning: message passing on a kNN graph to balance difficulty and diversity.

Maharana, Yadav & Bansal, "D2 Pruning: Message Passing for Balancing Diversity and Difficulty in
Data Pruning", ICLR 2024 (arXiv:2310.07931).

1. Graph: each sample is a node linked to its ``neighbours`` nearest samples (squared Euclidean
   distance d², exact, computed in row blocks: a sparse N × k graph, never a dense N × N one — the
   released code builds dense N × N matrices). Edges are directed (i → its own k neighbours), as in the
   released code's precomputed-graph path.
2. Forward message passing: each node's score becomes its difficulty plus its neighbours' difficulty
   weighted by an RBF kernel, ``s_i ← s_i + Σ_{j∈N(i)} exp(−γ_f·d²_ij)·s_j``: a hard sample in a dense
   hard region scores high.
3. Reverse message passing during greedy selection: pick the highest score, then down-weight its
   neighbours, ``s_j ← s_j − exp(−γ_r·d²_ij)·s_i``, so the next picks come from elsewhere.

Difficulty (``difficulty``), from the proxy run (``selection.scores``): ``forgetting`` events (the
paper's choice on CIFAR; never-learnt samples count E, above any possible count), ``el2n`` at the
proxy's early epoch, the mean training ``loss`` over epochs, or ``uniform`` (every node 1: pure
density/diversity, for when only ``--features`` are given and no proxy should be trained).

γ: the paper tunes γ_f, γ_r per dataset; 0 (the default) means ``1 / mean d²`` over the graph's
edges, which makes the kernel independent of the feature scale. Per class (own graph, own quota)
under ``--class-balanced``, so no class's budget leaks into another's. Keep priority: reverse
selection order; never-picked samples rank below, by their final score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..selection import scores
from ..selection.distances import centred, knn
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..progress import step_progress

DIFFICULTIES = ("forgetting", "el2n", "loss", "uniform")
PROGRESS_EVERY = 1024


def knn_graph(features: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse directed kNN graph: row i holds i's k nearest neighbours, values d² (N × N, N·k entries)."""
    n = features.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float64)
    neighbours, sq_dist = knn(centred(features), k)
    indptr = np.arange(0, n * k + 1, k)
    return sp.csr_matrix((sq_dist.ravel(), neighbours.ravel(), indptr), shape=(n, n))


def auto_gamma(graph: sp.csr_matrix) -> float:
    """``1 / mean d²`` over the edges (1 when the graph has none or all distances are 0)."""
    mean = float(graph.data.mean()) if graph.nnz else 0.0
    return 1.0 / mean if mean > 0 else 1.0


def kernel(graph: sp.csr_matrix, gamma: float) -> sp.csr_matrix:
    """The same graph with edge values exp(−γ·d²)."""
    weights = graph.copy()
    weights.data = np.exp(-gamma * graph.data)
    return weights


def d2_order(difficulty: np.ndarray, graph: sp.csr_matrix, budget: int, gamma_forward: float, gamma_reverse: float, *, advance=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D2 greedy selection: ``(picks in order, forward-passed scores, final scores)``."""
    n = len(difficulty)
    if not 0 <= budget <= n:
        raise ValueError(f"budget must lie in [0, {n}], got {budget}")
    difficulty = np.asarray(difficulty, dtype=np.float64)
    forward = difficulty + kernel(graph, gamma_forward) @ difficulty
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
    summary = "D2 pruning: forward/reverse message passing on a sparse kNN graph (difficulty + diversity)"
    inputs = ("features", "proxy")
    reference = "Maharana, Yadav & Bansal, D2 Pruning, ICLR 2024"

    @dataclass
    class Params:
        neighbours: int = param(10, "k of the kNN graph (the released code's default 10)", ge=1)
        gamma_forward: float = param(0.0, "γ_f of the forward kernel exp(-γ·d²); 0 = 1 / mean kNN d²", ge=0)
        gamma_reverse: float = param(0.0, "γ_r of the reverse kernel exp(-γ·d²); 0 = 1 / mean kNN d²", ge=0)
        difficulty: str = param("forgetting", "node difficulty: forgetting, el2n or loss (from the proxy run), uniform (features only, no proxy)", choices=DIFFICULTIES)

    def validate(self, ctx: SelectionContext) -> None:
        p = self.params
        if ctx.features is None or p.difficulty != "uniform":
            ctx.check_proxy_inputs(
                self.name,
                features=(None,) if ctx.features is None else (),
                logits=(None,) if p.difficulty == "el2n" else (),
                min_epochs=2 if p.difficulty == "forgetting" else 1,
            )

    def difficulty(self, ctx: SelectionContext) -> np.ndarray:
        kind = self.params.difficulty
        if kind == "uniform":
            return np.ones(len(ctx.dataset))
        record = ctx.proxy()
        if kind == "forgetting":
            return scores.forgetting_events(record.correct)
        if kind == "el2n":
            return scores.el2n(record.logits_at(record.early_epoch), ctx.labels)
        return np.asarray(record.loss, dtype=np.float64).mean(axis=0)

    def run(self, ctx: SelectionContext) -> MethodResult:
        features = np.asarray(ctx.embeddings(), dtype=np.float32)
        difficulty = self.difficulty(ctx)
        n = features.shape[0]
        groups = ctx.budget_groups(per_class=ctx.class_balanced)
        priority = np.zeros(n, dtype=np.float64)
        raw = np.zeros(n, dtype=np.float64)
        kept, gammas = [], []
        with step_progress("d2", ctx.budget, enabled=ctx.progress) as advance:
            for members, quota in groups:
                if len(members) == 0:
                    continue
                graph = knn_graph(features if len(members) == n else features[members], self.params.neighbours)
                g_f = self.params.gamma_forward or auto_gamma(graph)
                g_r = self.params.gamma_reverse or auto_gamma(graph)
                gammas.append((g_f, g_r))
                order, forward, final = d2_order(difficulty[members], graph, quota, g_f, g_r, advance=advance)
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
            info={
                "difficulty": self.params.difficulty,
                "raw_score": "forward message-passing score",
                "gamma_forward": float(np.mean([g[0] for g in gammas])) if gammas else None,
                "gamma_reverse": float(np.mean([g[1] for g in gammas])) if gammas else None,
            },
        )
