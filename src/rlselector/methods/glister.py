"""Glister: greedily build the subset whose gradient step most raises the validation log-likelihood.

Killamsetty, Sivasubramanian, Ramakrishnan, Iyer, "GLISTER: Generalization based Data Subset
Selection for Efficient and Robust Learning", AAAI 2021 (arXiv:2012.10630); the authors' released
code is CORDS (github.com/decile-team/cords, ``cords/selectionstrategies/SL/glisterstrategy.py``).
The subset ``S`` is grown greedily; the gain of adding sample ``i`` is the one-step Taylor
approximation of the validation log-likelihood after a gradient step,
``LL_V(θ_S − η g_i) − LL_V(θ_S) ≈ η⟨g_i, ∇LL_V(θ_S)⟩``, and after each addition the validation
gradient is re-evaluated at ``θ_S = θ_0 − η·Σ_{j∈S} g_j``: the step on the *sum* of the selected
gradients, as the paper's inner problem and CORDS's ``_update_grads_val`` (DeepCore steps with their
mean).

How it is done here (every choice stated):

- **A real validation split.** A seeded, class-stratified share ``val_fraction`` of the *training*
  set is held out (never the test set), as CORDS validates on a held-out split (DeepCore silently
  validates on the training set). Held-out samples are not candidates while other samples of their
  pool remain; only when a budget exceeds the other samples are they added, by their last gain. The
  manifest records how many were. Caveat: the shared proxy trained on all training samples,
  validation ones included; gradients are taken at the proxy's final recorded epoch (``epoch``).
- **Last-layer gradients**: ``g_i = (r_i h_iᵀ, r_i)`` for the proxy's last linear layer from recorded
  features ``h`` and logits (``r = softmax − onehot``), kept fixed at ``θ_0``, as DeepCore and CORDS's
  ``linear_layer=True``; ``bias_only`` keeps only ``r_i``, as CORDS's shipped configs
  (``linear_layer=False``). The validation logits after the step are recomputed *exactly* for that
  layer, ``z_V(θ_S) = z_V(θ_0) − η (H_V Σ_Aᵀ + Σ_a)``; the gain itself is the first-order Taylor term.
  Nothing N×N or N×C·d is formed: one gain pass is O(N·C·d).
- **Greedy** (``greedy``): ``naive`` adds one sample per step, the best of all candidates (the
  paper's greedy; CORDS ``Naive``): O(budget·N·C·d). ``stochastic`` takes the best of a random
  ``(N/budget)·ln(1/0.01)`` candidates per step (CORDS ``Stochastic``, its configs' choice, ε = 0.01),
  O(N·C·d·ln 100) in all. The pool is the whole set, or each class with its own validation samples
  under ``--class-balanced`` (CORDS ``PerClass``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..selection import scores
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.policies import class_quotas, ranks01

GREEDY = ("naive", "stochastic")
EPSILON = 0.01
"""Stochastic greedy's ε: each step looks at (N/budget)·ln(1/ε) candidates (CORDS: math.log(100))."""


def carve_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """Sorted indices of a class-stratified validation share: ``round(fraction·n_c)`` per class,
    at least one, and never a class's last sample."""
    held = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < 2:
            continue
        size = min(max(1, int(round(fraction * len(members)))), len(members) - 1)
        held.append(rng.choice(members, size=size, replace=False))
    return np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)


def glister_greedy(
    features: np.ndarray,
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    candidates: np.ndarray,
    val_index: np.ndarray,
    budget: int,
    lr: float,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy Glister on last-layer gradients: ``budget`` picks among the rows ``candidates``, the
    validation gradient from the rows ``val_index``. ``rng`` = stochastic greedy, None = naive.

    Returns ``(picked in pick order, every row's gain once the whole subset is taken)``.
    """
    residual = scores.residuals(logits, labels)
    val_features = np.asarray(features[val_index], dtype=np.float64)
    val_logits = np.asarray(logits[val_index], dtype=np.float64)
    val_labels = labels[val_index]
    sum_weight = np.zeros((residual.shape[1], features.shape[1]))
    sum_bias = np.zeros(residual.shape[1])

    def gains(rows: np.ndarray | None) -> np.ndarray:
        z = val_logits - lr * (val_features @ sum_weight.T + sum_bias)  # the validation logits after the summed step
        val_weight, val_bias = scores.mean_grad(val_features, scores.residuals(z, val_labels))
        return scores.grad_dot(features, residual, val_weight, val_bias, rows)

    free = np.zeros(len(labels), dtype=bool)
    free[candidates] = True
    sample = max(1, int(len(candidates) / max(budget, 1) * math.log(1 / EPSILON)))
    picked = np.empty(budget, dtype=np.int64)
    for t in range(budget):
        if rng is None:
            gain = np.where(free, gains(None), -np.inf)
            best = int(np.argmax(gain))
        else:
            pool = np.flatnonzero(free)
            pool = rng.choice(pool, size=min(sample, len(pool)), replace=False)
            best = int(pool[np.argmax(gains(pool))])
        picked[t] = best
        free[best] = False
        sum_weight += np.outer(residual[best], features[best])
        sum_bias += residual[best]
    return picked, gains(None)


@register_method
class Glister(SelectionMethod):
    name = "glister"
    summary = "greedy subset maximising held-out validation log-likelihood (one-step Taylor on the summed step, last layer)"
    inputs = ("proxy",)
    reference = "Killamsetty et al., GLISTER: Generalization based Data Subset Selection for Efficient and Robust Learning, AAAI 2021 (CORDS)"

    @dataclass
    class Params:
        val_fraction: float = param(0.1, "share of each class held out of the training set as the validation split (seeded)", gt=0, lt=1)
        lr: float = param(0.1, "step size η of the one-step update (CORDS sets it to the optimiser's rate; the proxy's is 0.1)", gt=0)
        greedy: str = param("naive", "naive: best of all candidates each step (the paper's greedy); stochastic: best of a random "
                                     "(N/budget)·ln 100 (CORDS's configs, much faster on large sets)", choices=GREEDY)
        bias_only: bool = param(False, "gradients of the last layer's bias only (CORDS's configs, linear_layer=False); "
                                       "False = weights and bias (DeepCore, CORDS linear_layer=True)")
        epoch: int | None = param(None, "proxy epoch whose features/logits give the gradients; None = the last recorded", ge=0)

    def validate(self, ctx: SelectionContext) -> None:
        ctx.check_proxy_inputs(self.name, logits=[self.params.epoch], features=[self.params.epoch])

    def run(self, ctx: SelectionContext) -> MethodResult:
        record = ctx.proxy()
        epoch = self.params.epoch
        if epoch is None:
            common = sorted(set(record.logit_epochs) & set(record.feature_epochs))
            if not common:
                raise InputError(f"{record.source}: no epoch has both 'logits_<e>' and 'features_<e>'; glister needs both")
            epoch = common[-1]
        labels, k, num_classes = ctx.labels, ctx.budget, ctx.dataset.num_classes
        val_index = carve_validation(labels, self.params.val_fraction, ctx.rng("glister-validation"), num_classes)
        is_val = np.zeros(len(labels), dtype=bool)
        is_val[val_index] = True
        # the whole set against the whole validation split, or each class against its own (CORDS PerClass)
        pools = list(enumerate(class_quotas(labels, k, num_classes))) if ctx.class_balanced else [(None, k)]
        features = record.features_at(epoch)
        if self.params.bias_only:
            features = np.zeros((len(labels), 0), dtype=np.float32)
        rng = ctx.rng("glister-greedy") if self.params.greedy == "stochastic" else None
        picked, gains = [], np.zeros(len(labels))
        for cls, quota in pools:
            where = np.arange(len(labels)) if cls is None else np.flatnonzero(labels == cls)
            rows = slice(None) if cls is None else where  # a view, not a copy, for the whole set
            candidates, own_val = np.flatnonzero(~is_val[rows]), np.flatnonzero(is_val[rows])
            chosen, pool_gains = glister_greedy(
                features[rows], record.logits_at(epoch)[rows], labels[rows], candidates=candidates, val_index=own_val,
                budget=min(quota, len(candidates)), lr=self.params.lr, rng=rng,
            )
            gains[rows] = pool_gains
            extra = quota - len(chosen)  # a budget beyond the other samples: validation ones by their gain
            picked += [where[chosen], where[own_val[np.argsort(-pool_gains[own_val], kind="stable")[:extra]]]]
        picked = np.concatenate(picked)
        priority = ranks01(gains)
        priority[picked] = 1.0 + (len(picked) - np.arange(len(picked))) / max(len(picked), 1)
        return MethodResult(
            scores=priority,
            indices=np.sort(picked),
            raw_scores=gains,
            info={
                "raw_score": "one-step Taylor gain once the subset is taken (higher = raises validation log-likelihood more)",
                "epoch": epoch,
                "validation_size": int(len(val_index)),
                "validation_selected": int(is_val[picked].sum()),
                "gradient": "last layer (bias only), exact" if self.params.bias_only else "last layer (weights and bias), exact",
            },
        )
