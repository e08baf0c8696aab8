"""Paper §5.4: the Dunn index of a feature set (classes as clusters) and a t-SNE picture of a selection.

Dunn index: ``DI = min_{i≠j} δ(C_i, C_j) / max_k Δ(C_k)`` with δ the smallest Euclidean distance
between a point of class i and a point of class j, and Δ the mean distance over the pairs of
distinct points of one class. Higher = classes better separated and more compact. Distances are
computed in row blocks (``block × N``, never ``N × N``) and reduced at once into the per-class
minima and sums. For big sets :func:`sampled_dunn` takes a seeded uniform sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.distance import cdist

from ..errors import InputError


def dunn_index(features: np.ndarray, labels: np.ndarray, *, block: int = 1024) -> float:
    """Exact Dunn index of ``features`` (N, d) grouped by ``labels`` (N,); memory O(block · N).

    Classes with a single point have no intra-class pair and do not enter the maximum of Δ; at
    least two classes are required.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise InputError(f"dunn_index: features {features.shape} and labels {labels.shape} disagree")
    order = np.argsort(labels, kind="stable")
    x, y = features[order], labels[order]
    classes, starts, counts = np.unique(y, return_index=True, return_counts=True)
    k = len(classes)
    if k < 2:
        raise InputError("dunn_index: needs at least two classes")
    class_of = np.repeat(np.arange(k), counts)  # class position of each sorted row
    delta = np.full((k, k), np.inf)  # smallest inter-class distance
    intra = np.zeros(k)  # sum of intra-class distances over ordered pairs
    for lo in range(0, len(x), block):
        hi = min(lo + block, len(x))
        d = cdist(x[lo:hi], x)  # (b, N)
        to_class_min = np.minimum.reduceat(d, starts, axis=1)  # (b, k): nearest point of each class
        to_class_sum = np.add.reduceat(d, starts, axis=1)
        rows = class_of[lo:hi]
        intra += np.bincount(rows, weights=to_class_sum[np.arange(hi - lo), rows], minlength=k)
        row_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # rows are sorted by class
        block_min = np.minimum.reduceat(to_class_min, row_starts, axis=0)  # (classes in block, k)
        present = rows[row_starts]
        delta[present] = np.minimum(delta[present], block_min)
    np.fill_diagonal(delta, np.inf)
    pairs = counts * (counts - 1)
    spread = np.where(pairs > 0, intra / np.maximum(pairs, 1), 0.0)
    if spread.max() <= 0:
        raise InputError("dunn_index: no class has two distinct points; the index is undefined")
    return float(delta.min() / spread.max())


def sampled_dunn(features: np.ndarray, labels: np.ndarray, size: int, *, seed: int) -> float:
    """Dunn index of a seeded uniform sample of ``size`` points (all of them if there are fewer)."""
    n = len(labels)
    if size < n:
        index = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
        features, labels = features[index], labels[index]
    return dunn_index(features, labels)


def selection_dunn(features: np.ndarray, labels: np.ndarray, kept: np.ndarray, *, max_samples: int, seed: int) -> dict[str, float | int]:
    """Dunn index of the kept samples and of the full set, compared at equal size, and against the
    whole full set as the paper compares them.

    δ is a minimum over pairs, so it shrinks as points are added: the full set is therefore sampled
    to the size of the (possibly sampled) selected set, with the same seed, before comparing
    (``change_pct``). The paper's figure (+92 % at 90 %) sets the selected set against the whole
    full set, which favours the smaller set: that comparison is ``change_whole_pct``, against
    ``dunn_whole`` (the full set sampled to at most ``max_samples`` points).
    """
    size = min(max_samples, len(kept))
    selected = sampled_dunn(features[kept], labels[kept], size, seed=seed)
    full = sampled_dunn(features, labels, size, seed=seed)
    whole = sampled_dunn(features, labels, min(max_samples, len(labels)), seed=seed)
    return {"dunn_selected": selected, "dunn_full": full, "points": int(size), "change_pct": _change(selected, full),
            "dunn_whole": whole, "change_whole_pct": _change(selected, whole)}


def _change(value: float, reference: float) -> float:
    return 100.0 * (value / reference - 1.0) if reference > 0 else float("nan")


def tsne_picture(
    features: np.ndarray,
    labels: np.ndarray,
    kept: np.ndarray,
    path: str | Path,
    *,
    samples: int,
    seed: int,
    title: str,
    classes: tuple[str, ...] | list[str] = (),
) -> Path:
    """Two panels on one seeded t-SNE map (sklearn) of a sample of the training set: every point
    coloured by class, then kept points coloured by class over pruned points in grey. With at most
    20 classes a legend names each class's colour (``classes``: the names; default the class ids);
    with more, colours repeat and the legend says so."""
    from sklearn.manifold import TSNE

    from .figures import pyplot

    plt = pyplot()

    n = len(labels)
    index = np.sort(np.random.default_rng(seed).choice(n, size=min(samples, n), replace=False))
    mask = np.zeros(n, dtype=bool)
    mask[kept] = True
    x = np.asarray(features[index], dtype=np.float32)
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (len(index) - 1) / 3))).fit_transform(x)
    y, keep = labels[index], mask[index]
    count = max(len(classes), int(labels.max()) + 1)
    names = list(classes) or [str(k) for k in range(count)]
    palette = np.asarray(plt.get_cmap("tab10" if count <= 10 else "tab20").colors)
    colour = palette[y % len(palette)]
    fig, axes = plt.subplots(1, 2, figsize=(12.5, 5), sharex=True, sharey=True)
    axes[0].scatter(emb[:, 0], emb[:, 1], c=colour, s=6)
    axes[0].set_title(f"all samples ({len(index):,} shown)")
    from matplotlib.lines import Line2D

    axes[1].scatter(emb[~keep, 0], emb[~keep, 1], c="lightgrey", s=6, marker="x")
    axes[1].scatter(emb[keep, 0], emb[keep, 1], c=colour[keep], s=6)
    axes[1].set_title("kept (colour = class) vs pruned (grey)")
    axes[1].legend(handles=[Line2D([], [], marker="x", linestyle="none", color="darkgrey", label=f"pruned ({int((~keep).sum()):,})"),
                            Line2D([], [], marker="o", linestyle="none", color="dimgrey", label=f"kept ({int(keep.sum()):,}), colour = class")],
                   loc="lower right", fontsize=8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if count <= len(palette):
        handles = [Line2D([], [], marker="o", linestyle="none", color=palette[k], label=names[k]) for k in range(count)]
        fig.legend(handles=handles, title="class", loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    else:
        fig.text(1.0, 0.5, f"{count} classes:\ncolours repeat\nevery {len(palette)}", fontsize=8, va="center")
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..io import atomic_write

    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=90, bbox_inches="tight"))
    plt.close(fig)
    return path
