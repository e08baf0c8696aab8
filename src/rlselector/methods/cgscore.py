"""CG-Score: the complexity gap of a sample, from a Gram matrix, without training a model.

Nohyun, Choi & Chung, "Data Valuation Without Training of a Model", ICLR 2023 (arXiv:2301.00930);
the authors' ``calc_cg_score`` and ``pruning`` (their released CG-score code).

For a two-layer ReLU network in the NTK regime, ``y^T (H^∞)^{-1} y`` bounds the generalisation error
(Arora et al. 2019), with the arc-cosine Gram matrix of unit-norm inputs

    H^∞_ij = x_i·x_j · (π − arccos(x_i·x_j)) / (2π),   H^∞_ii = 1/2.

The CG-score of sample i is how much that complexity drops when i is removed,

    CG_i = y^T H^{-1} y − y_{-i}^T H_{-i}^{-1} y_{-i} = (H^{-1} y)_i² / (H^{-1})_ii,

(the right-hand side is the block-inverse identity: one inversion scores every sample of the Gram).
Multi-class data is scored one class at a time against the rest: the class's samples have y = +1 and
as many samples drawn from the other classes (``negatives`` × as many) have y = −1, as in the authors'
code, on the raw rows scaled to unit norm. High CG-score = a sample the others do not explain (rare,
atypical or mislabelled); ``pruning`` keeps the highest of each class (``per_class``).

Approximation (documented): the exact score inverts one Gram per class, O(n_k³) time and O(n_k²)
memory (50,000³ at CIFAR-10 per class, impossible on CPU). Here each class is cut into random chunks
of ``chunk_size`` samples, each chunk is scored against its own random negatives, and the score is
averaged over ``repeats`` independent random partitions: O(repeats · N · chunk_size²) time and
O(chunk_size²) memory. The authors' code is already stochastic (random negatives, averaged over
``rep_num`` repetitions, their appendix A.2); cutting the positives into chunks is the added
approximation, and it is exact when ``chunk_size`` exceeds the class size. ``center`` (off, as the
authors) subtracts the mean feature first: network features are non-negative after a ReLU, so raw
inner products crowd near 1 and the Gram is nearly singular; the authors scored mean-normalised pixels.
A tiny ``ridge`` (1e-8, against a diagonal of 1/2; the authors invert H as it is) keeps H invertible
when samples are exact duplicates: a duplicate with the same label then scores ≈ 0 (removing it
changes nothing), one with a conflicting label scores very high.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from ..selection.method import ScoreMethod, SelectionContext, param, policy_param, register_method
from ..progress import step_progress


def ntk_gram(z: np.ndarray) -> np.ndarray:
    """Arc-cosine (two-layer ReLU NTK) Gram of unit-norm rows ``z``, float64, diagonal 1/2."""
    inner = np.clip(z @ z.T, -1.0, 1.0)
    gram = inner * (np.pi - np.arccos(inner)) / (2.0 * np.pi)
    np.fill_diagonal(gram, 0.5)
    return gram


def complexity_gaps(gram: np.ndarray, y: np.ndarray, *, ridge: float = 1e-8) -> np.ndarray:
    """``y^T H^{-1} y − y_{-i}^T H_{-i}^{-1} y_{-i}`` for every i, via ``(H^{-1}y)_i² / (H^{-1})_ii``,
    with ``H + ridge·I`` in place of H (exact duplicates make H singular)."""
    m = len(y)
    factor = scipy.linalg.cho_factor(gram + ridge * np.eye(m), lower=True)
    inverse = scipy.linalg.cho_solve(factor, np.eye(m))
    alpha = inverse @ y
    return alpha**2 / np.diag(inverse)


def unit_rows(features: np.ndarray, mean: np.ndarray | None = None) -> np.ndarray:
    """Rows minus ``mean`` (if given), scaled to unit norm, float64 (all-zero rows stay zero)."""
    z = np.asarray(features, dtype=np.float64)
    if mean is not None:
        z = z - mean
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.maximum(norms, 1e-12)


@register_method
class CGScore(ScoreMethod):
    name = "cgscore"
    summary = "CG-Score: complexity gap of the NTK Gram bound when a sample is removed (chunked); keep the highest per class"
    inputs = ("features",)
    reference = "Nohyun, Choi & Chung, Data Valuation Without Training of a Model, ICLR 2023"
    raw_score_name = "CG-score"

    @dataclass
    class Params:
        chunk_size: int = param(512, "samples of one class per Gram (exact when it exceeds the class size); cost grows with its "
                                     "square (8192, the most, makes 2 GiB Grams at negatives=1)", ge=1, le=8192)
        repeats: int = param(4, "independent random partitions into chunks; the score is their mean", ge=1)
        negatives: float = param(1.0, "samples of the other classes per chunk, as a multiple of the chunk (the authors' unbalance_ratio)", gt=0)
        center: bool = param(False, "subtract the mean feature before normalising rows to unit norm (the authors normalise the raw rows)")
        ridge: float = param(1e-8, "added to the Gram diagonal (diagonal 1/2) so exact duplicates keep it invertible", gt=0)
        per_class: bool = param(True, "keep the highest of each class with proportional quotas, as the authors' pruning; False = the global top")
        policy: str = policy_param("keep-highest")

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_embeddings(self.name)

    def ranks_per_class(self, ctx: SelectionContext) -> bool:
        return ctx.class_balanced or self.params.per_class

    def score(self, ctx: SelectionContext) -> np.ndarray:
        p = self.params
        features = np.asarray(ctx.embeddings(), dtype=np.float32)
        mean = features.mean(axis=0, dtype=np.float64) if p.center else None
        labels = ctx.labels
        n = len(labels)
        rng = ctx.rng("cgscore")
        total = np.zeros(n)
        counts = np.zeros(n)
        classes = [k for k in range(ctx.dataset.num_classes) if np.any(labels == k)]
        steps = sum(p.repeats * -(-int((labels == k).sum()) // p.chunk_size) for k in classes)
        with step_progress("CG-score chunks", steps, enabled=ctx.progress) as advance:
            for _ in range(p.repeats):
                for k in classes:
                    members = np.flatnonzero(labels == k)
                    others = np.flatnonzero(labels != k)
                    n_chunks = -(-len(members) // p.chunk_size)
                    for chunk in np.array_split(rng.permutation(members), n_chunks):
                        n_neg = min(int(round(p.negatives * len(chunk))), len(others))
                        negatives = rng.choice(others, size=n_neg, replace=False) if n_neg else others[:0]
                        rows = np.concatenate([chunk, negatives])
                        y = np.concatenate([np.ones(len(chunk)), -np.ones(n_neg)])
                        gaps = complexity_gaps(ntk_gram(unit_rows(features[rows], mean)), y, ridge=p.ridge)
                        total[chunk] += gaps[: len(chunk)]
                        counts[chunk] += 1
                        advance(1)
        return total / np.maximum(counts, 1)
