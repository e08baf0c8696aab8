"""``rlselector report DIR``: one self-contained HTML page and Markdown/CSV tables of a results directory.

Reads every stored cell (``cells/*.json``, ``analysis/*.json``) of a directory written by
:func:`~rlselector.bench.run_bench` (finished or not) and writes, under ``DIR/report/``:

- ``index.html``: every table and figure, figures embedded as base64 PNG (one file to mail or open);
- ``report.md`` with the same tables, linking the PNGs in ``figures/``;
- ``summary.csv`` (one row per table entry: mean, std, n, best, p-value), ``cells.csv`` (one row per
  cell) and ``per_class.csv`` (kept samples per class of every selection).

Label-noise runs are reported in their own sections, never mixed with clean ones.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..errors import InputError
from ..io import atomic_write_bytes
from ..selection.policies import BAND
from ..selection.format import MANIFEST
from .config import ALL_METHODS
from .runner import ANALYSIS, CELLS, FULL, SCRATCH
from .stats import ALPHA, BASELINE, TEST_NAME, Table, build_table, mean_std

REPORT_DIR = "report"
FOCUS_METHOD = "rl-selector"
"""The method whose standing against the best other method each accuracy table states in words."""
METHOD_ORDER = (FULL, *ALL_METHODS, SCRATCH)
DIAGNOSTIC_LOG_SUFFIXES = (".log", ".txt", ".jsonl", ".csv")
MAX_DIAGNOSTIC_BYTES = 4_000_000


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def load_records(results: Path) -> list[dict[str, Any]]:
    """Every stored cell of a results directory, once each (files are keyed by content)."""
    records = []
    for folder in (CELLS, ANALYSIS):
        for path in sorted((results / folder).glob("*.json")):
            try:
                records.append(json.loads(path.read_text()))
            except json.JSONDecodeError as err:
                raise InputError(f"{path}: not valid JSON ({err}); delete it and run the grid again to recompute that cell") from err
    return records


# --------------------------------------------------------------------------------------------
# the document: a list of blocks rendered to HTML and Markdown
# --------------------------------------------------------------------------------------------
@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Text:
    text: str


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


@dataclass
class Pre:
    title: str
    text: str


Block = Heading | Text | Table | Figure | Pre


class Report:
    def __init__(self, results: Path, records: list[dict[str, Any]]) -> None:
        self.results = results
        self.records = records
        self.blocks: list[Block] = []
        self.tables: list[Table] = []
        self.per_class_rows: list[dict[str, Any]] = []
        self.context = ""
        """The heading the next table stands under (names the table in summary.csv)."""

    # --- building ---------------------------------------------------------------------------
    def add(self, block: Block) -> None:
        if isinstance(block, Figure):  # file names stay unique however long the titles
            block.name = f"{sum(isinstance(b, Figure) for b in self.blocks) + 1:02d}-{block.name}"[:90]
        if isinstance(block, Table):
            block.context = self.context
            self.tables.append(block)
        if isinstance(block, Heading) and block.level <= 3:
            self.context = block.text
        self.blocks.append(block)

    def build(self) -> None:
        grid = _read_json(self.results / "grid.json")
        main = [r for r in self.records if r["kind"] in ("full", "eval") and r.get("top1") is not None]
        self.add(Heading(1, f"Benchmark report: {grid.get('name', self.results.name)}"))
        self.add(Text(self._overview(grid, main)))
        for noise in sorted({_noise(r) for r in self.records}):
            self._noise_section(noise, [r for r in main if _noise(r) == noise])
        self._transfer_section([r for r in self.records if r["kind"] in ("transfer", "scratch") and r.get("top1") is not None])
        self._analysis_section([r for r in self.records if r["kind"] in ("dunn", "tsne")])
        self._diagnostics_section(main)

    def _overview(self, grid: dict[str, Any], main: list[dict[str, Any]]) -> str:
        kinds = defaultdict(int)
        for r in self.records:
            kinds[r["kind"]] += 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        datasets = sorted({r["data"]["name"] for r in main if r.get("data")})
        return (
            f"Results directory {self.results}; {len(self.records)} stored cells ({counts}); data: {', '.join(datasets) or '–'}. "
            f"Written {time.strftime('%Y-%m-%d %H:%M')}. "
            f"Accuracy is the final epoch's test accuracy (%) of a model trained from scratch on the selected subset with one "
            f"recipe for all methods. Entries are mean ± sample standard deviation (ddof = 1) over seeds; the best mean "
            f"of each column is bold (reference rows do not compete); * marks a difference to random (either way) with p < {ALPHA} in {TEST_NAME}, which needs "
            f"two seeds on each side (hover an entry for n and p; every p-value is in summary.csv). Selection cost is the "
            f"method's own time plus the proxy training it needs (a shared proxy is charged to every method using it)."
        )

    def _noise_section(self, noise: float, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if noise:
            seed = records[0]["noise"].get("seed")
            self.add(Heading(2, f"Label noise: {100 * noise:g} % of training labels flipped (seed {seed})"))
            self.add(Text("These runs are kept apart from the clean ones: the training labels (and so the selections) differ; "
                          "the test labels are clean."))
        else:
            self.add(Heading(2, "Clean labels"))
        tag = f"noise {100 * noise:g} %" if noise else "clean"
        settings = defaultdict(list)
        for r in records:
            settings[_setting(r)].append(r)
        for setting, rows in settings.items():
            title = f"{setting} ({tag})"
            self.add(Heading(3, title))
            for metric in ("top1", "top5"):
                table = self._table(rows, title=f"test {metric[:3]}-{metric[3:]} % by selection ratio", value=lambda r, m=metric: r.get(m),
                                    column=lambda r: None if r["method"] == FULL else r["ratio"], reference=lambda r: r["method"] == FULL,
                                    column_label=_pct)
                self.add(table)
                if metric == "top1" and (standing := _standing(table, FOCUS_METHOD)):
                    self.add(Text(standing))
            evals = [r for r in rows if r["kind"] == "eval"]
            if evals:
                self.add(Figure(f"accuracy-{_slug(title)}", _accuracy_plot(rows, title), f"Test top-1 by method and selection ratio, mean ± std over seeds: {title}"))
                self.add(Figure(f"cost-{_slug(title)}", _cost_plot(evals, title), f"Selection cost vs accuracy (the paper's Fig. 4): {title}"))
                self.add(self._table(evals, title="selection cost (s)", mark_best=False, value=lambda r: r["selection"].get("cost_s"),
                                     column=lambda r: r["ratio"], column_label=_pct, test=False, fmt="{:.1f}"))
                self.add(self._table(evals, title="training time on the subset (s)", mark_best=False, value=lambda r: r.get("train_s"),
                                     column=lambda r: r["ratio"], column_label=_pct, test=False, fmt="{:.1f}"))
            if noise and evals:
                self.add(self._table(evals, title="flipped labels among the kept samples (%)",
                                     value=lambda r: 100.0 * r["selection"].get("flipped_kept", 0) / max(1, r["selection"]["n_kept"]),
                                     column=lambda r: r["ratio"], column_label=_pct, higher_is_better=False, fmt="{:.1f}"))
        models = {(r["model"], r["width"]) for r in records}
        if len(models) > 1:
            self.add(Heading(3, f"Cross-architecture ({tag}): selected once, evaluated with each model"))
            for ratio in sorted({r["ratio"] for r in records if r["kind"] == "eval"}):
                subset = [r for r in records if r["ratio"] == ratio or r["method"] == FULL]
                self.add(self._table(subset, title=f"test top-1 % at {_pct(ratio)} kept, by evaluation model ({tag})", value=lambda r: r.get("top1"),
                                     column=lambda r: f"{r['model']} w{r['width']}", reference=lambda r: r["method"] == FULL))
        self._per_class(noise, [r for r in records if r["kind"] == "eval"], tag)

    def _per_class(self, noise: float, evals: list[dict[str, Any]], tag: str) -> None:
        """Kept samples per class of each selection (the first seed; one row per selection)."""
        if not evals:
            return
        self.add(Heading(3, f"Kept samples per class ({tag})"))
        seen = {}
        for r in evals:
            seen.setdefault(r["selection"]["dir"], r)
        for dir_, r in seen.items():
            for name, counts in r["selection"].get("per_class", {}).items():
                self.per_class_rows.append({"noise": noise, "method": r["method"], "ratio": r["ratio"], "seed": r["seed"],
                                            "class": name, "kept": counts["kept"], "total": counts["total"], "selection": dir_})
        for ratio in sorted({r["ratio"] for r in seen.values()}):
            first_seed = min(r["seed"] for r in seen.values() if r["ratio"] == ratio)
            chosen = {r["method"]: r for r in seen.values() if r["ratio"] == ratio and r["seed"] == first_seed}
            methods = _ordered(chosen)
            classes = list(next(iter(chosen.values()))["selection"].get("per_class", {}))
            if not classes:
                continue
            kept = np.array([[chosen[m]["selection"]["per_class"][c]["kept"] for c in classes] for m in methods], dtype=float)
            total = np.array([chosen[methods[0]]["selection"]["per_class"][c]["total"] for c in classes], dtype=float)
            self.add(Figure(f"per-class-{_slug(tag)}-{ratio:.2f}", _per_class_plot(methods, classes, kept, total, ratio),
                             f"Share of each class kept at {_pct(ratio)} (seed {first_seed}; numbers = kept samples; class sizes {', '.join(str(int(t)) for t in total)})"))

    def _transfer_section(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self.add(Heading(2, "Transfer: pre-train on a selected subset, fine-tune on another dataset (the paper's Table 1 analogue)"))
        targets = sorted({r["data"]["name"] for r in records})
        self.add(Text(f"Accuracy on the fine-tuning dataset ({', '.join(targets)}). The pre-trained network is the evaluation model "
                      f"trained on the selected subset; all its weights except the re-initialised classifier are fine-tuned. "
                      f"Reference rows: pre-training on the full source set, and training on the target from scratch."))
        transfers = [r for r in records if r["kind"] == "transfer"]
        scratch = [r for r in records if r["kind"] == "scratch"]
        model = lambda r: f"{r['model']} w{r['width']}"  # noqa: E731
        is_ref = lambda r: r["method"] in (FULL, SCRATCH)  # noqa: E731
        for noise, name in sorted({(_noise(r), model(r)) for r in transfers or scratch}):
            rows = [r for r in transfers if _noise(r) == noise and model(r) == name] + [r for r in scratch if model(r) == name]
            self.add(self._table(rows, title=f"fine-tuned test top-1 % on {', '.join(targets)} by pre-training subset ratio: {name}"
                                 + (f" (source labels {100 * noise:g} % noisy)" if noise else ""),
                                 value=lambda r: r.get("top1"), column=lambda r: None if is_ref(r) else r["ratio"], reference=is_ref,
                                 column_label=_pct))

    def _analysis_section(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self.add(Heading(2, "Analysis (paper §5.4): feature-space geometry of the selected sets"))
        dunn = [r for r in records if r["kind"] == "dunn"]
        if dunn:
            self.add(Text("Dunn index DI = min_{i≠j} δ(C_i, C_j) / max_k Δ(C_k) (δ: smallest distance between two classes' points, "
                          "Δ: mean intra-class pair distance; higher = better separated) on the penultimate features of the full-data "
                          "model, classes as clusters. The selected set and the full set are compared at equal size (a seeded uniform "
                          "sample of at most max_samples points): δ shrinks as points are added, so an unequal comparison would favour "
                          "the smaller set. Random selection is the reference a method must beat."))
            for noise in sorted({_noise(r) for r in dunn}):
                rows = [r for r in dunn if _noise(r) == noise]
                tag = f" (noise {100 * noise:g} %)" if noise else ""
                refs = [{**r, "method": "full set (same size)", "dunn_selected": r["dunn_full"]} for r in rows]
                self.add(self._table(rows + _unique_refs(refs), title=f"Dunn index of the selected set{tag}", value=lambda r: r.get("dunn_selected"),
                                     column=lambda r: r["ratio"], reference=lambda r: r["method"] == "full set (same size)",
                                     column_label=_pct, fmt="{:.4f}"))
                self.add(self._table(rows, title=f"Dunn index change vs the full set at equal size (%){tag}", value=lambda r: r.get("change_pct"),
                                     column=lambda r: r["ratio"], column_label=_pct, fmt="{:+.1f}"))
        for r in (r for r in records if r["kind"] == "tsne"):
            path = self.results / r["png"]
            if path.exists():
                self.add(Figure(f"tsne-{_slug(r['label'])}", path.read_bytes(),
                                 f"t-SNE of {r['features_from']} features: {r['method']} at {_pct(r['ratio'])}, seed {r['seed']} (kept coloured by class, pruned grey)"))

    def _diagnostics_section(self, main: list[dict[str, Any]]) -> None:
        """Pictures and logs a method left in its selection directory (RL-Selector's training curves, ...)."""
        found = []
        seen = set()
        for r in sorted((r for r in main if r["kind"] == "eval"), key=lambda r: (_order_key(r["method"]), r["ratio"], r["seed"])):
            folder = self.results / r["selection"]["dir"]
            if folder in seen or not folder.is_dir():
                continue
            seen.add(folder)
            first_seed = min(x["seed"] for x in main if x["kind"] == "eval" and x["method"] == r["method"] and x["ratio"] == r["ratio"])
            if r["seed"] != first_seed:
                continue
            for path in sorted(folder.rglob("*")):
                if not path.is_file() or path.stat().st_size > MAX_DIAGNOSTIC_BYTES:
                    continue
                name = f"{r['method']} at {_pct(r['ratio'])}, seed {r['seed']}{' noise ' + str(_noise(r)) if _noise(r) else ''}: {path.relative_to(folder)}"
                if path.suffix == ".png":
                    found.append(Figure(f"diag-{_slug(r['selection']['dir'])}-{_slug(path.stem)}", path.read_bytes(), name))
                elif path.suffix in DIAGNOSTIC_LOG_SUFFIXES and "diag" in path.name.lower():
                    lines = path.read_text(errors="replace").splitlines()
                    found.append(Pre(name, "\n".join((["..."] if len(lines) > 40 else []) + lines[-40:])))
        natural = self._natural_ratios(main)
        if found or natural:
            self.add(Heading(2, "Method diagnostics (from the selection directories, first seed)"))
        if natural:
            self.add(self._table(natural, title="natural kept share before band enforcement", mark_best=False, test=False,
                                 value=lambda r: r["natural_ratio"], column=lambda r: r["ratio"], column_label=_pct, fmt="{:.3f}"))
            inside = defaultdict(lambda: [0, 0])
            for r in natural:
                inside[r["method"]][0] += abs(r["natural_ratio"] - r["ratio"]) <= BAND
                inside[r["method"]][1] += 1
            self.add(Text("Runs ending inside the ±1-point band without enforcement: "
                          + "; ".join(f"{method}: {k} of {n}" for method, (k, n) in inside.items()) + "."))
        for block in found:
            self.add(block)

    def _natural_ratios(self, main: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Eval records (one per selection) whose selection manifest states a natural kept share."""
        rows, seen = [], set()
        for r in main:
            if r["kind"] != "eval" or r["selection"]["dir"] in seen:
                continue
            seen.add(r["selection"]["dir"])
            manifest = self.results / r["selection"]["dir"] / MANIFEST
            natural = _read_json(manifest).get("natural_ratio") if manifest.is_file() else None
            if natural is not None:
                rows.append({**r, "natural_ratio": natural})
        return rows

    def _table(self, records: list[dict[str, Any]], *, title: str, value: Callable, column: Callable, **options: Any) -> Table:
        return build_table(records, title=title, row=lambda r: r["method"], column=column, value=value,
                           row_order=METHOD_ORDER, **options)

    # --- rendering ----------------------------------------------------------------------------
    def html(self) -> str:
        parts, toc = [], []
        for index, block in enumerate(self.blocks):
            if isinstance(block, Heading):
                parts.append(f'<h{block.level} id="s{index}">{html.escape(block.text)}</h{block.level}>')
                if block.level in (2, 3):
                    toc.append(f'<li class="l{block.level}"><a href="#s{index}">{html.escape(block.text)}</a></li>')
            elif isinstance(block, Text):
                parts.append(f"<p>{html.escape(block.text)}</p>")
            elif isinstance(block, Table):
                parts.append(f'<div class="table">{block.html()}</div>')
            elif isinstance(block, Figure):
                data = base64.b64encode(block.png).decode()
                parts.append(f'<figure><img alt="{html.escape(block.caption)}" src="data:image/png;base64,{data}">'
                             f"<figcaption>{html.escape(block.caption)}</figcaption></figure>")
            elif isinstance(block, Pre):
                parts.append(f"<details open><summary>{html.escape(block.title)}</summary><pre>{html.escape(block.text)}</pre></details>")
        if toc:  # contents after the title and the overview
            parts.insert(2, f'<nav><b>Contents</b><ul>{"".join(toc)}</ul></nav>')
        title = html.escape(next((b.text for b in self.blocks if isinstance(b, Heading)), "Benchmark report"))
        return f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title><style>{_CSS}</style></head>\n<body>\n" \
               + "\n".join(parts) + "\n</body></html>\n"

    def markdown(self) -> str:
        parts = []
        for block in self.blocks:
            if isinstance(block, Heading):
                parts.append(f"{'#' * block.level} {block.text}\n")
            elif isinstance(block, Text):
                parts.append(block.text + "\n")
            elif isinstance(block, Table):
                parts.append(block.markdown())
            elif isinstance(block, Figure):
                parts.append(f"![{block.caption}](figures/{block.name}.png)\n")
            elif isinstance(block, Pre):
                parts.append(f"{block.title}:\n\n```\n{block.text}\n```\n")
        return "\n".join(parts)


def write_report(results_dir: str | Path) -> dict[str, Path]:
    """Write ``DIR/report/{index.html, report.md, summary.csv, cells.csv, per_class.csv}`` and the
    figures; return kind → path."""
    results = Path(results_dir)
    if not results.is_dir():
        raise InputError(f"{results}: not a directory; give the --out directory of 'rlselector bench'")
    records = load_records(results)
    if not records:
        raise InputError(f"{results}: no stored cells ({results / CELLS}/*.json); run 'rlselector bench --out {results}' first")
    report = Report(results, records)
    report.build()
    out = results / REPORT_DIR
    for block in report.blocks:
        if isinstance(block, Figure):
            atomic_write_bytes(out / "figures" / f"{block.name}.png", block.png)
    paths = {
        "html": atomic_write_bytes(out / "index.html", report.html().encode()),
        "markdown": atomic_write_bytes(out / "report.md", report.markdown().encode()),
        "summary_csv": _write_csv(out / "summary.csv", (row for t in report.tables for row in t.csv_rows())),
        "cells_csv": _write_csv(out / "cells.csv", (_flat(r) for r in records)),
        "per_class_csv": _write_csv(out / "per_class.csv", report.per_class_rows),
    }
    return paths


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(method: str, methods: list[str]) -> dict[str, Any]:
    if method == "rl-selector":
        return {"color": "crimson", "linewidth": 2.5, "marker": "o", "zorder": 5}
    if method == BASELINE:
        return {"color": "black", "linestyle": "--", "marker": "s"}
    others = [m for m in methods if m not in ("rl-selector", BASELINE)]
    colour = _pyplot().get_cmap("tab20")(others.index(method) % 20 / 20) if method in others else "grey"
    return {"color": colour, "marker": ".", "linewidth": 1.2}


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def _accuracy_plot(records: list[dict[str, Any]], title: str) -> bytes:
    """Accuracy vs ratio, one line per method; with a single ratio, one bar per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    evals = [r for r in records if r["kind"] == "eval"]
    methods = _ordered({r["method"] for r in evals})
    if len({r["ratio"] for r in evals}) == 1:
        stats_ = [mean_std([r["top1"] for r in evals if r["method"] == m]) for m in methods]
        ax.barh(range(len(methods)), [m for m, _ in stats_], xerr=[s for _, s in stats_], capsize=3,
                color=[_style(m, methods)["color"] for m in methods])
        ax.set_yticks(range(len(methods)), methods)
        ax.invert_yaxis()
        full = [r["top1"] for r in records if r["method"] == FULL]
        if full:
            ax.axvline(np.mean(full), color="grey", linestyle=":", label=f"full data {np.mean(full):.2f}")
            ax.legend(fontsize=8, loc="lower right")
        ax.set_xlabel(f"test top-1 (%) at {_pct(evals[0]['ratio'])} kept")
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
        style = _style(method, methods)
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


def _cost_plot(evals: list[dict[str, Any]], title: str) -> bytes:
    plt = _pyplot()
    ratios = sorted({r["ratio"] for r in evals})
    methods = _ordered({r["method"] for r in evals})
    fig, axes = plt.subplots(1, len(ratios), figsize=(min(max(4.2 * len(ratios), 7), 17), 4.5), squeeze=False)
    for ax, ratio in zip(axes[0], ratios):
        for method in methods:
            rows = [r for r in evals if r["ratio"] == ratio and r["method"] == method]
            if not rows:
                continue
            cost = max(float(np.mean([r["selection"]["cost_s"] for r in rows])), 0.01)
            acc, std = mean_std([r["top1"] for r in rows])
            style = {k: v for k, v in _style(method, methods).items() if k in ("color", "marker", "zorder")}
            ax.errorbar([cost], [acc], yerr=[std], capsize=3, markersize=7, linestyle="none", **style)
            ax.annotate(method, (cost, acc), textcoords="offset points", xytext=(4, 3), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("selection cost (s, log)")
        ax.set_title(f"{_pct(ratio)} kept", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("test top-1 (%)")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def _per_class_plot(methods: list[str], classes: list[str], kept: np.ndarray, total: np.ndarray, ratio: float) -> bytes:
    plt = _pyplot()
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
    ax.set_title(f"kept per class at {_pct(ratio)}", fontsize=10)
    return _png(fig)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _standing(table: Table, focus: str) -> str:
    """``focus`` against the best other method of each column, in points of mean accuracy."""
    parts = []
    for column in table.columns:
        ours = table.entry(focus, column) if focus in table.rows else None
        others = {row: table.entry(row, column) for row in table.rows if row not in (focus, *table.references)}
        others = {row: e for row, e in others.items() if e is not None}
        if ours is None or not others:
            continue
        best = max(others, key=lambda row: others[row].mean)
        rank = 1 + sum(e.mean > ours.mean for e in others.values())
        gap = ours.mean - others[best].mean
        verdict = f"ahead of the best other ({best}, {others[best].mean:.2f}) by {gap:.2f}" if gap >= 0 else \
            f"behind {best} ({others[best].mean:.2f}) by {-gap:.2f}"
        parts.append(f"{table.column_label(column)}: {ours.mean:.2f}, {verdict}, rank {rank} of {len(others) + 1}")
    return f"{focus} against the other methods (mean top-1, points): " + "; ".join(parts) + "." if parts else ""


def _noise(record: dict[str, Any]) -> float:
    return float((record.get("noise") or {}).get("rate") or 0.0)


def _setting(record: dict[str, Any]) -> str:
    t = record.get("train") or {}
    data = (record.get("data") or {}).get("name", "?").split("+noise")[0]
    recipe = f"{t.get('epochs')} ep, batch {t.get('batch_size')}, lr {t.get('lr')} {t.get('schedule')}, wd {t.get('weight_decay')}"
    return f"{data}, {record['model']} w{record['width']}, {recipe}"


def _pct(ratio: Any) -> str:
    return "all" if ratio is None else f"{100 * ratio:g} %" if isinstance(ratio, (int, float)) else str(ratio)


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")[:80]


def _order_key(method: str) -> tuple[int, str]:
    return (METHOD_ORDER.index(method), "") if method in METHOD_ORDER else (len(METHOD_ORDER), method)


def _ordered(methods: Iterable[str]) -> list[str]:
    return sorted(set(methods), key=_order_key)


def _unique_refs(refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One full-set reference per (ratio, seed): every method's record carries the same value."""
    seen = {}
    for r in refs:
        seen.setdefault((r["ratio"], r["seed"]), r)
    return list(seen.values())


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    sel = record.get("selection") or {}
    return {
        "key": record["key"], "kind": record["kind"], "method": record.get("method"), "ratio": record.get("ratio"),
        "seed": record.get("seed"), "model": record.get("model"), "width": record.get("width"), "noise": _noise(record),
        "data": (record.get("data") or {}).get("name"), "top1": record.get("top1"), "top5": record.get("top5"),
        "n_train": record.get("n_train"), "n_kept": sel.get("n_kept"), "ratio_achieved": sel.get("ratio_achieved"),
        "selection_s": sel.get("selection_s"), "proxy_s": sel.get("proxy_s"), "cost_s": sel.get("cost_s"),
        "train_s": record.get("train_s"), "dunn_selected": record.get("dunn_selected"), "dunn_full": record.get("dunn_full"),
        "label": record.get("label"),
    }


def _write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    rows = list(rows)
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields or ["empty"])
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(path, buffer.getvalue().encode())


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1250px; color: #222; line-height: 1.4; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #bbb; margin-top: 2em; } h4 { margin-bottom: 0.3em; }
div.table { display: inline-block; vertical-align: top; margin-right: 2.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.2em; font-size: 0.88em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
thead th { background: #f0f0f0; } tbody th { text-align: left; background: #fafafa; }
tr.ref td, tr.ref th { background: #eef4fb; font-style: italic; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; font-size: 0.8em; overflow-x: auto; }
p.note { font-size: 0.85em; color: #555; }
nav ul { margin: 0.3em 0; padding-left: 1.2em; font-size: 0.9em; } nav li.l3 { margin-left: 1.5em; list-style: circle; }
"""
