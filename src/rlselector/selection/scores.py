"""Shared per-sample score math on training dynamics: last-layer gradients, EL2N, forgetting, AUM.

Every method that scores from the proxy record uses these functions; none keeps its own copy.

**Last-layer gradients.** For a linear last layer ``z = W h + b`` (``W``: C×d, ``b``: C) and the
cross-entropy loss, the gradient of sample ``i`` with respect to ``(W, b)`` is exactly

    g_i = (r_i h_iᵀ, r_i),   r_i = softmax(z_i) − onehot(y_i)

so ``‖g_i‖ = ‖r_i‖·‖[h_i, 1]‖`` and every inner product ``⟨g_i, (A, a)⟩ = r_iᵀ(A h_i + a)`` costs
O(C·d) without ever forming the C·(d+1)-vector. These are exact for the last layer; what they
leave out is the gradient of the layers below it (the usual approximation of DeepCore's GraNd and
Glister, stated by each method that uses it).

All functions work in float64 on row chunks, so memory stays O(chunk·(C + d)) whatever N is.
"""

from __future__ import annotations

import numpy as np

CHUNK = 8192
"""Rows per block of the chunked computations."""


def _chunks(n: int):
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64, shifted by the row maximum (no overflow)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def residuals(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``softmax(z) − onehot(y)`` (N, C): the cross-entropy gradient with respect to the logits."""
    r = softmax(logits)
    r[np.arange(len(r)), np.asarray(labels, dtype=np.int64)] -= 1.0
    return r


def el2n(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """EL2N (Paul et al. 2021): ``‖softmax(z) − onehot(y)‖₂`` per sample."""
    return np.linalg.norm(residuals(logits, labels), axis=1)


def _augmented_sq_norms(features: np.ndarray) -> np.ndarray:
    """``‖[h, 1]‖²`` per row: the bias acts as a constant input 1."""
    out = np.empty(len(features), dtype=np.float64)
    for rows in _chunks(len(features)):
        h = np.asarray(features[rows], dtype=np.float64)
        out[rows] = np.einsum("nd,nd->n", h, h) + 1.0
    return out


def grad_sq_norms(features: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """``‖g_i‖² = ‖r_i‖²·(‖h_i‖² + 1)``: squared last-layer (weight and bias) gradient norms."""
    return np.einsum("nc,nc->n", residual, residual) * _augmented_sq_norms(features)


def grad_norms(features: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """GraNd on the last layer: ``‖∇_{W,b} ℓ_i‖ = ‖r_i‖·‖[h_i, 1]‖`` (exact for that layer)."""
    return np.sqrt(grad_sq_norms(features, residuals(logits, labels)))


def mean_grad(features: np.ndarray, residual: np.ndarray, index: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean last-layer gradient ``(A, a)`` over ``index`` (all rows if None): ``A = mean r hᵀ`` (C, d), ``a = mean r`` (C,)."""
    rows_all = np.arange(len(residual)) if index is None else np.asarray(index, dtype=np.int64)
    c, d = residual.shape[1], features.shape[1]
    weight, bias = np.zeros((c, d)), np.zeros(c)
    for rows in _chunks(len(rows_all)):
        idx = rows_all[rows]
        r = np.asarray(residual[idx], dtype=np.float64)
        weight += r.T @ np.asarray(features[idx], dtype=np.float64)
        bias += r.sum(axis=0)
    count = max(len(rows_all), 1)
    return weight / count, bias / count


def grad_dot(features: np.ndarray, residual: np.ndarray, weight: np.ndarray, bias: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
    """``⟨g_i, (A, a)⟩ = r_iᵀ (A h_i + a)`` for the rows in ``index`` (all if None)."""
    rows_all = np.arange(len(residual)) if index is None else np.asarray(index, dtype=np.int64)
    out = np.empty(len(rows_all), dtype=np.float64)
    for rows in _chunks(len(rows_all)):
        idx = rows_all[rows]
        projected = np.asarray(features[idx], dtype=np.float64) @ weight.T + bias
        out[rows] = np.einsum("nc,nc->n", np.asarray(residual[idx], dtype=np.float64), projected)
    return out


def forgetting_counts(correct: np.ndarray) -> np.ndarray:
    """Forgetting events (Toneva et al. 2019): per sample, the number of epochs ``t`` at which it
    was classified correctly at ``t−1`` and incorrectly at ``t``. ``correct`` is (E, N) bool."""
    correct = np.asarray(correct, dtype=bool)
    return (correct[:-1] & ~correct[1:]).sum(axis=0).astype(np.int64)


def never_learned(correct: np.ndarray) -> np.ndarray:
    """Samples never classified correctly in any recorded epoch (Toneva et al.: infinitely forgotten)."""
    return ~np.asarray(correct, dtype=bool).any(axis=0)


def forgetting_events(correct: np.ndarray) -> np.ndarray:
    """Forgetting counts as a score (float): never-learned samples get ``E``, above any possible count
    (Toneva et al. rank them as forgotten infinitely often; a finite value keeps scores finite)."""
    correct = np.asarray(correct, dtype=bool)
    events = forgetting_counts(correct).astype(np.float64)
    events[never_learned(correct)] = correct.shape[0]
    return events


def accumulated_margin(prob_margin: np.ndarray) -> np.ndarray:
    """The area under the margin as CCS and D2 compute it (``accumulated_margin`` of their
    ``generate_importance_score.py``): per sample, the sum over the training epochs of
    ``p_y − max_{k≠y} p_k`` from the training forward (``prob_margin``, E×N). Low = hard or
    mislabeled. Pleiss et al. average logit margins instead; the ranking differs, not the idea."""
    return np.asarray(prob_margin, dtype=np.float64).sum(axis=0)
