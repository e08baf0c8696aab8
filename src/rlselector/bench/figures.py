"""The report's figures (matplotlib, Agg backend), each returned as PNG bytes: accuracy by selection
ratio, selection cost against accuracy (the paper's Fig. 4), the share of each class kept, and
RL-Selector's training diagnostics."""

from __future__ import annotations

import io
import math
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


MARKERS = ("^", "v", "D", "P", "X", "<", ">", "h", "*", "p", "d", "H", "8")
"""Markers of the methods other than the focus (o) and the baseline (s), in turn (with colours, no two alike)."""
NEGLIGIBLE_COST_S = 0.01
"""Selection costs below this are drawn in a strip labelled "≈ 0 s" left of the log axis, not on it."""


def _style(method: str, methods: list[str], focus: str) -> dict[str, Any]:
    if method == focus:
        return {"color": "crimson", "linewidth": 2.5, "marker": "o", "zorder": 5}
    if method == BASELINE:
        return {"color": "black", "linestyle": "--", "marker": "s"}
    others = [m for m in methods if m not in (focus, BASELINE)]
    if method not in others:
        return {"color": "grey", "marker": ".", "linewidth": 1.2}
    index = others.index(method)
    shade = (2 * index) % 20 + (index // 10) % 2  # the ten strong tab20 colours first, then their light partners
    return {"color": pyplot().get_cmap("tab20")(shade), "marker": MARKERS[index % len(MARKERS)], "linewidth": 1.2}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def accuracy_plot(records: list[dict[str, Any]], title: str, methods: list[str], focus: str, *, metric: str = "top1",
                  label: str = "test top-1 (%)") -> bytes:
    """Accuracy (the records' ``metric``) vs ratio, one line per method of ``methods`` (in that order);
    with a single ratio, one bar per method; the full-data records give the reference line."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    evals = [r for r in records if r["kind"] == "eval"]
    full = [r[metric] for r in records if r["method"] == FULL]
    if len({r["ratio"] for r in evals}) == 1:
        stats_ = [mean_std([r[metric] for r in evals if r["method"] == m]) for m in methods]
        ax.barh(range(len(methods)), [m for m, _ in stats_], xerr=[s for _, s in stats_], capsize=3,
                color=[_style(m, methods, focus)["color"] for m in methods])
        ax.set_yticks(range(len(methods)), methods)
        ax.invert_yaxis()
        if full:
            ax.axvline(np.mean(full), color="grey", linestyle=":", label=f"full data {np.mean(full):.2f}")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"{label} at {percent(evals[0]['ratio'])} kept")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
        return _png(fig)
    for method in methods:
        points = defaultdict(list)
        for r in evals:
            if r["method"] == method:
                points[r["ratio"]].append(r[metric])
        xs = sorted(points)
        means, stds = zip(*(mean_std(points[x]) for x in xs))
        ax.errorbar([100 * x for x in xs], means, yerr=stds, label=method, capsize=3, **_style(method, methods, focus))
    if full:
        m, s = mean_std(full)
        ax.axhline(m, color="grey", linestyle=":", label=f"full data {m:.2f}")
        ax.axhspan(m - s, m + s, color="grey", alpha=0.15)
    ax.set_xlabel("selection ratio (% of training set kept)")
    ax.set_ylabel(label)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _png(fig)


def cost_plot(evals: list[dict[str, Any]], title: str, methods: list[str], focus: str, *, metric: str = "top1",
              label: str = "test top-1 (%)") -> bytes:
    """Selection cost vs accuracy, one panel per ratio, one point per method of ``methods``.

    Points carry no text (labels of nearby points overlap): one legend beside the panels names
    every method's colour and marker. The cost axis is logarithmic; costs below
    ``NEGLIGIBLE_COST_S`` (random's, a few milliseconds) cannot sit on it honestly, so they stand in
    a strip of their own left of an axis break, labelled "≈ 0 s".
    """
    from matplotlib import ticker

    plt = pyplot()
    ratios = sorted({r["ratio"] for r in evals})
    fig = plt.figure(figsize=(min(max(4.4 * len(ratios), 6), 16), 4.6))
    outer = fig.add_gridspec(1, len(ratios), wspace=0.22)
    handles: dict[str, Any] = {}
    for index, ratio in enumerate(ratios):
        points = []
        for method in methods:
            rows = [r for r in evals if r["ratio"] == ratio and r["method"] == method]
            if rows:
                points.append((method, float(np.mean([r["selection"]["cost_s"] for r in rows])), *mean_std([r[metric] for r in rows])))
        negligible = [p for p in points if p[1] < NEGLIGIBLE_COST_S]
        inner = outer[index].subgridspec(1, 2, width_ratios=[1, 6], wspace=0.06)
        strip = fig.add_subplot(inner[0])
        ax = fig.add_subplot(inner[1], sharey=strip)
        for method, cost, acc, std in points:
            style = {k: v for k, v in _style(method, methods, focus).items() if k in ("color", "marker", "zorder")}
            if cost < NEGLIGIBLE_COST_S:  # side by side in the strip, in method order
                where, x = strip, negligible.index((method, cost, acc, std)) - (len(negligible) - 1) / 2
            else:
                where, x = ax, cost
            handles[method] = where.errorbar([x], [acc], yerr=[std], capsize=3, markersize=7, linestyle="none", **style)
        strip.set_xlim(-max(1.0, len(negligible) / 2 + 0.5), max(1.0, len(negligible) / 2 + 0.5))
        strip.set_xticks([0], ["≈ 0 s"], fontsize=8)
        strip.set_xlabel(f"< {NEGLIGIBLE_COST_S:g} s", fontsize=7)
        ax.set_xscale("log")
        ax.margins(x=0.12, y=0.08)
        if not any(p[1] >= NEGLIGIBLE_COST_S for p in points):
            ax.set_xlim(0.1, 10)
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel("selection cost (s, log)")
        ax.set_title(f"{percent(ratio)} kept", fontsize=9)
        _axis_break(strip, ax)
        for a in (strip, ax):
            a.grid(alpha=0.3)
        if index == 0:
            strip.set_ylabel(label)
    fig.legend(list(handles.values()), list(handles), loc="center left", bbox_to_anchor=(0.91, 0.5), fontsize=8, frameon=False)
    fig.subplots_adjust(right=0.9, top=0.82)
    fig.suptitle(f"{title}\nmean ± std over seeds; costs below {NEGLIGIBLE_COST_S:g} s in the strip left of the break", fontsize=9)
    return _png(fig)


def _axis_break(left, right) -> None:
    """Hide the facing spines of two side-by-side axes and draw the // marks of a broken x axis."""
    left.spines["right"].set_visible(False)
    right.spines["left"].set_visible(False)
    right.tick_params(axis="y", left=False, labelleft=False)
    slant = {"marker": [(-0.5, -1), (0.5, 1)], "markersize": 10, "linestyle": "none", "color": "k", "mec": "k", "mew": 1, "clip_on": False}
    left.plot([1, 1], [0, 1], transform=left.transAxes, **slant)
    right.plot([0, 0], [0, 1], transform=right.transAxes, **slant)


def diagnostics_plot(histories: dict[str, list[dict[str, float]]], targets: dict[str, float]) -> bytes:
    """RL-Selector's training by epoch, one line per selection (``histories``: label → per-epoch
    records of its ``diagnostics.jsonl``): the natural kept share against its target (dashed), the
    two reward terms, the policy's spread. Missing values leave gaps."""
    plt = pyplot()
    panels = [("natural kept share (dotted: target)", ("natural_ratio",)), ("reward terms (ratio —, cover --)", ("reward_ratio", "reward_cover")),
              ("policy std", ("policy_std",))]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.6))
    colours = pyplot().get_cmap("tab10")
    for i, (label, history) in enumerate(histories.items()):
        colour = colours(i % 10)
        epochs = [r.get("epoch", n + 1) for n, r in enumerate(history)]
        for ax, (_, keys) in zip(axes, panels):
            for key, line in zip(keys, ("-", "--")):
                ax.plot(epochs, [_number(r.get(key)) for r in history], line, marker="o", markersize=3, color=colour,
                        label=label if key == keys[0] else None)
        axes[0].axhline(targets[label], color=colour, linestyle=":", linewidth=1)
    from matplotlib.ticker import MaxNLocator

    for ax, (title, _) in zip(axes, panels):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return _png(fig)


def _number(value: Any) -> float:
    """A diagnostics value as a float; NaN (a gap in the line) when absent or not a number."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


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
