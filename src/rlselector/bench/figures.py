"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes: accuracy by selection
ratio, selection cost against accuracy (the paper's Fig. 4), and the share of each class kept."""

from __future__ import annotations

import io
from collections import defaultdict
from typing import Any

import numpy as np

from .plan import FULL
from .stats import BASELINE, mean_std, percent


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(method: str, methods: list[str], focus: str) -> dict[str, Any]:
    if method == focus:
        return {"color": "crimson", "linewidth": 2.5, "marker": "o", "zorder": 5}
    if method == BASELINE:
        return {"color": "black", "linestyle": "--", "marker": "s"}
    others = [m for m in methods if m not in (focus, BASELINE)]
    colour = pyplot().get_cmap("tab20")(others.index(method) % 20 / 20) if method in others else "grey"
    return {"color": colour, "marker": ".", "linewidth": 1.2}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def accuracy_plot(records: list[dict[str, Any]], title: str, methods: list[str], focus: str) -> bytes:
    """Accuracy vs ratio, one line per method of ``methods`` (in that order); with a single ratio, one
    bar per method; the full-data records give the reference line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    evals = [r for r in records if r["kind"] == "eval"]
    if len({r["ratio"] for r in evals}) == 1:
        stats_ = [mean_std([r["top1"] for r in evals if r["method"] == m]) for m in methods]
        ax.barh(range(len(methods)), [m for m, _ in stats_], xerr=[s for _, s in stats_], capsize=3,
                color=[_style(m, methods, focus)["color"] for m in methods])
        ax.set_yticks(range(len(methods)), methods)
        ax.invert_yaxis()
        full = [r["top1"] for r in records if r["method"] == FULL]
        if full:
            ax.axvline(np.mean(full), color="grey", linestyle=":", label=f"full data {np.mean(full):.2f}")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"test top-1 (%) at {percent(evals[0]['ratio'])} kept")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        return _png(fig)
    for method in methods:
        points = defaultdict(list)
        for r in evals:
            if r["method"] == method:
                points[r["ratio"]].append(r["top1"])
        xs = sorted(points)
        means, stds = zip(*(mean_std(points[x]) for x in xs))
        style = _style(method, methods, focus)
        ax.errorbar([100 * x for x in xs], means, yerr=stds, label=method, capsize=3, **style)
    full = [r["top1"] for r in records if r["method"] == FULL]
    if full:
        m, s = mean_std(full)
        ax.axhline(m, color="grey", linestyle=":", label=f"full data {m:.2f}")
        ax.axhspan(m - s, m + s, color="grey", alpha=0.15)
    ax.set_xlabel("selection ratio (% of training set kept)")
    ax.set_ylabel("test top-1 (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return _png(fig)


def cost_plot(evals: list[dict[str, Any]], title: str, methods: list[str], focus: str) -> bytes:
    """Selection cost vs accuracy, one panel per ratio, one point per method of ``methods``."""
    plt = pyplot()
    ratios = sorted({r["ratio"] for r in evals})
    fig, axes = plt.subplots(1, len(ratios), figsize=(min(max(4.2 * len(ratios), 7), 17), 4.5), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        for method in methods:
            rows = [r for r in evals if r["ratio"] == ratio and r["method"] == method]
            if not rows:
                continue
            cost = max(float(np.mean([r["selection"]["cost_s"] for r in rows])), 0.01)
            acc, std = mean_std([r["top1"] for r in rows])
            style = {k: v for k, v in _style(method, methods, focus).items() if k in ("color", "marker", "zorder")}
            ax.errorbar([cost], [acc], yerr=[std], capsize=3, markersize=7, linestyle="none", **style)
            ax.annotate(method, (cost, acc), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("selection cost (s, log)")
        ax.set_title(f"{percent(ratio)} kept", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%)")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def per_class_plot(methods: list[str], classes: list[str], kept: np.ndarray, total: np.ndarray, ratio: float) -> bytes:
    """Share of each class (columns) kept by each method (rows), the kept counts written in the cells."""
    plt = pyplot()
    share = kept / np.maximum(total, 1)
    fig, ax = plt.subplots(figsize=(min(1 + 0.6 * len(classes), 18), 0.4 * len(methods) + 1.5))
    image = ax.imshow(share, cmap="RdBu", vmin=max(0.0, ratio - 0.5), vmax=min(1.0, ratio + 0.5), aspect="auto")
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    if len(classes) <= 20:
        for i in range(len(methods)):
            for j in range(len(classes)):
                ax.text(j, i, str(int(kept[i, j])), ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="share of the class kept")
    ax.set_title(f"kept per class at {percent(ratio)}", fontsize=10)
    return _png(fig)
