"""The report's content: section by section, the tables, figures and text of a results directory's
stored cells, assembled into a :class:`~rlselector.bench.document.Document`.

Label-noise runs get their own sections, never mixed with clean ones. The accuracy shown is the
test split's or the validation split's (``split``). Every accuracy table is followed by each
method's paired difference from random with its 95 % CI, each method's rank with its bootstrap
range, the measured CI half-width of ``FOCUS_METHOD`` − random, and a sentence on where
``FOCUS_METHOD`` stands against the best other method; a one-seed setting says it has no
uncertainty wherever it ranks. A method's own diagnostics (RL-Selector's per-epoch records as a
plot and a table, the pictures and logs it left in its selection directory, the natural kept share
its manifest states) close the report.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..selection.format import MANIFEST
from ..selection.policies import BAND
from ..errors import InputError
from .document import Block, Document, Figure, Heading, Pre, Text
from .figures import accuracy_plot, cost_plot, diagnostics_plot, per_class_plot
from .grids import ALL_METHODS, TARGET_TRAINING_METHODS
from .plan import FULL, SCRATCH
from .stats import ALPHA, BASELINE, BOOTSTRAP_RESAMPLES, TEST_NAME, Table, build_table, difference_table, percent, rank_table
from .store import GRID_FILE, read_json, resolve_inside

FOCUS_METHOD = "rl-selector"
"""The method whose standing against the best other method each accuracy table states in words."""
METHOD_ORDER = tuple(dict.fromkeys((FULL, FOCUS_METHOD, *TARGET_TRAINING_METHODS, BASELINE, *ALL_METHODS, SCRATCH)))
"""Row order: full data, the method in focus, the project's other target-training methods, the
baseline, every other method by name, then the transfer reference."""
SPLITS = {"test": ("top1", "top5"), "validation": ("val_top1", "val_top5")}
"""The record fields of each split's top-1 and top-5 accuracy."""
ONE_SEED = "one seed: no uncertainty"
DIAGNOSTIC_LOG_SUFFIXES = (".log", ".txt")
"""Plain-text logs shown as they are (their name must contain "diag")."""
DIAGNOSTIC_RECORDS = "diagnostics.jsonl"
"""Per-epoch records (RL-Selector's), shown as a plot and a table of the last epoch."""
DIAGNOSTIC_COLUMNS = ("natural_ratio", "delta", "reward_ratio", "reward_cover", "actor_loss", "critic_loss", "explained_variance",
                      "policy_std", "seconds_target", "seconds_cover", "seconds_agent")
MAX_DIAGNOSTIC_BYTES = 4_000_000


class ReportBuilder:
    """Builds the report of ``records`` (the stored cells of ``results``) into ``document``; the
    kept-per-class rows of every selection are collected for per_class.csv."""

    def __init__(self, results: Path, records: list[dict[str, Any]], *, split: str = "test") -> None:
        self.results = results
        self.records = records
        self.split = split
        self.top1, self.top5 = SPLITS[split]
        self.document = Document()
        self.per_class_rows: list[dict[str, Any]] = []

    def add(self, block: Block) -> None:
        self.document.add(block)

    def build(self) -> None:
        grid_file = self._inside(self.results / GRID_FILE)
        grid = read_json(grid_file, fix=f"delete {grid_file}; the next run of the grid writes it again") if grid_file.exists() else {}
        main = [r for r in self.records if r["kind"] in ("full", "eval") and r.get(self.top1) is not None]
        if not main and self.split == "validation" and any(r["kind"] in ("full", "eval") for r in self.records):
            raise InputError(f"{self.results}: no cell holds a validation accuracy; add 'validation: 0.1' to the grid and run it "
                             f"again (new cells), or write the test report (--split test)")
        self.add(Heading(1, f"Benchmark report: {grid.get('name', self.results.name)}" + (" (validation split)" if self.split == "validation" else "")))
        self.add(Text(self._overview(grid, main)))
        seeds = sorted({r["seed"] for r in main})
        if len(seeds) == 1:
            self.add(Text(f"{ONE_SEED.capitalize()}: every entry is a single run (seed {seeds[0]}), so there is no standard "
                          f"deviation, confidence interval, test or rank range; a difference or a rank below may be noise."))
        for noise in sorted({_noise(r) for r in self.records}):
            self._noise_section(noise, [r for r in main if _noise(r) == noise])
        self._transfer_section([r for r in self.records if r["kind"] in ("transfer", "scratch") and r.get(self.top1) is not None])
        self._analysis_section([r for r in self.records if r["kind"] in ("dunn", "tsne")])
        self._diagnostics_section(main)

    def _overview(self, grid: dict[str, Any], main: list[dict[str, Any]]) -> str:
        kinds = defaultdict(int)
        for r in self.records:
            kinds[r["kind"]] += 1
        counts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        datasets = sorted({r["data"]["name"] for r in main if r.get("data")})
        validation = next((r["validation"] for r in main if isinstance(r.get("validation"), dict)), {})
        held = f"{100 * validation['fraction']:g} % of the training set" if isinstance(validation.get("fraction"), (int, float)) else "the training set"
        split = (f"validation accuracy (%) on a seeded, class-stratified hold-out of {held} ({validation.get('n', '–')} samples, seed "
                 f"{validation.get('seed', '–')}) that neither selection nor training saw: the split to choose defaults on"
                 if self.split == "validation" else "test accuracy (%)")
        return (
            f"Results directory {self.results}; {len(self.records)} stored cells ({counts}); data: {', '.join(datasets) or '–'}. "
            f"Written {time.strftime('%Y-%m-%d %H:%M')}. "
            f"Accuracy is the final epoch's {split} of a model trained from scratch on the selected subset with one "
            f"recipe for all methods; for a given ratio, seed and evaluation model every method's subset trains with the same "
            f"evaluation seed (initial weights, augmentation stream), so methods are compared in pairs matched by (ratio, seed, "
            f"evaluation model). Entries are mean ± sample standard deviation (ddof = 1) over seeds; the best mean "
            f"of each column is bold (reference rows do not compete); * marks a difference to random (either way) with p < {ALPHA} in {TEST_NAME} "
            f"(hover an entry for n, p and the test; every p-value is in summary.csv). Each accuracy table is followed by the "
            f"paired difference from random, mean [95 % CI] (Student t over the seed pairs), and by each method's rank [its 95 % "
            f"range over {BOOTSTRAP_RESAMPLES} paired bootstrap draws of the seeds: whole seeds are drawn, so what a seed does to "
            f"every method cancels; with 3 seeds the range is coarse and, like any bootstrap of few seeds, optimistic]. Selection "
            f"cost is the method's own time plus the proxy training it needs (a shared proxy is charged to every method using it)."
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
        name = self.split
        for setting, rows in settings.items():
            title = f"{setting} ({tag})"
            self.add(Heading(3, title))
            ratio_column = lambda r: None if r["method"] == FULL else r["ratio"]
            is_full = lambda r: r["method"] == FULL
            top1 = self._table(rows, title=f"{name} top-1 % by selection ratio", value=lambda r: r.get(self.top1), column=ratio_column,
                               reference=is_full, column_label=percent)
            self.add(top1)
            self._paired_tables(rows, name, tag, top1)
            self.add(self._table(rows, title=f"{name} top-5 % by selection ratio", value=lambda r: r.get(self.top5), column=ratio_column,
                                 reference=is_full, column_label=percent))
            evals = [r for r in rows if r["kind"] == "eval"]
            if evals:
                methods = _ordered(r["method"] for r in evals)
                label = f"{name} top-1 (%)"
                self.add(Figure(f"accuracy-{_slug(title)}", accuracy_plot(rows, title, methods, FOCUS_METHOD, metric=self.top1, label=label),
                                f"{name.capitalize()} top-1 by method and selection ratio, mean ± std over seeds: {title}"))
                self.add(Figure(f"cost-{_slug(title)}", cost_plot(evals, title, methods, FOCUS_METHOD, metric=self.top1, label=label),
                                f"Selection cost vs accuracy (the paper's Fig. 4): {title}. Costs under 0.01 s (random's) stand "
                                f"left of the axis break, at ≈ 0 s"))
                self.add(self._table(evals, title="selection cost (s)", mark_best=False, value=lambda r: r["selection"].get("cost_s"),
                                     column=lambda r: r["ratio"], column_label=percent, test=False, fmt="{:.1f}"))
                self.add(self._table(evals, title="training time on the subset (s)", mark_best=False, value=lambda r: r.get("train_s"),
                                     column=lambda r: r["ratio"], column_label=percent, test=False, fmt="{:.1f}"))
            if noise and evals:
                self.add(self._table(evals, title="flipped labels among the kept samples (%)",
                                     value=lambda r: 100.0 * r["selection"].get("flipped_kept", 0) / max(1, r["selection"]["n_kept"]),
                                     column=lambda r: r["ratio"], column_label=percent, higher_is_better=False, fmt="{:.1f}"))
        models = {(r["model"], r["width"]) for r in records}
        if len(models) > 1:
            self.add(Heading(3, f"Cross-architecture ({tag}): selected once, evaluated with each model"))
            for ratio in sorted({r["ratio"] for r in records if r["kind"] == "eval"}):
                subset = [r for r in records if r["ratio"] == ratio or r["method"] == FULL]
                self.add(self._table(subset, title=f"{name} top-1 % at {percent(ratio)} kept, by evaluation model ({tag})", value=lambda r: r.get(self.top1),
                                     column=lambda r: f"{r['model']} w{r['width']}", reference=lambda r: r["method"] == FULL))
        self._per_class(noise, [r for r in records if r["kind"] == "eval"], tag)

    def _paired_tables(self, rows: list[dict[str, Any]], name: str, tag: str, top1: Table) -> None:
        """After a top-1 table: the paired difference from random, the ranks with their bootstrap range,
        the measured CI half-width of the focus method − random per ratio, and the focus method's standing."""
        evals = [r for r in rows if r["kind"] == "eval"]
        one_seed = len({r["seed"] for r in evals}) == 1
        caveat = f" ({ONE_SEED})" if one_seed else ""
        value, column = (lambda r: r.get(self.top1)), (lambda r: r["ratio"])
        differences = difference_table(evals, title=f"{name} top-1 minus random (points), mean [95 % CI], paired over seeds{caveat}",
                                       row=lambda r: r["method"], column=column, value=value, row_order=METHOD_ORDER, column_label=percent,
                                       note="pairs: same ratio, seed and evaluation model, so the same evaluation seed; CI from "
                                            "Student t with n − 1 degrees of freedom; * = p < 0.05 in the paired t-test")
        if differences.rows:
            self.add(differences)
        ranks = rank_table(evals, title=f"rank by mean {name} top-1 [95 % paired-bootstrap range]{caveat}", row=lambda r: r["method"],
                           column=column, value=value, row_order=METHOD_ORDER, column_label=percent,
                           note="1 = best; over the seeds every method holds; ties share the better rank")
        if ranks.rows:
            self.add(ranks)
        widths = [f"{percent(c)}: ±{e.high - e.mean:.2f} (n = {e.n})" for c in differences.columns
                  if (e := differences.entry(FOCUS_METHOD, c)) is not None and e.high is not None]
        if widths:
            self.add(Text(f"Measured 95 % CI half-width of {FOCUS_METHOD} − {BASELINE} ({name} top-1, points, paired over seeds, {tag}): "
                          + "; ".join(widths) + ". A difference smaller than this is not resolved by these seeds."))
        if standing := _standing(top1, ranks, FOCUS_METHOD):
            self.add(Text(standing))

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
            self.add(Figure(f"per-class-{_slug(tag)}-{ratio:.2f}", per_class_plot(methods, classes, kept, total, ratio),
                             f"Share of each class kept at {percent(ratio)} (seed {first_seed}; numbers = kept samples; class sizes {', '.join(str(int(t)) for t in total)})"))

    def _transfer_section(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        self.add(Heading(2, "Transfer: pre-train on a selected subset, fine-tune on another dataset (the paper's Table 1 analogue)"))
        transfer_datasets = sorted({r["data"]["name"] for r in records})
        self.add(Text(f"Accuracy on the fine-tuning dataset ({', '.join(transfer_datasets)}). The pre-trained network is the evaluation model "
                      f"trained on the selected subset; all its weights except the re-initialised classifier are fine-tuned. "
                      f"Reference rows: pre-training on the full source set, and training on the transfer dataset from scratch. "
                      f"Fine-tuning recipe: " + "; ".join(sorted({_recipe_text(r["train"]) for r in records if r.get("train")}))))
        transfers = [r for r in records if r["kind"] == "transfer"]
        scratch = [r for r in records if r["kind"] == "scratch"]
        model = lambda r: f"{r['model']} w{r['width']}"
        is_ref = lambda r: r["method"] in (FULL, SCRATCH)
        for noise, name in sorted({(_noise(r), model(r)) for r in transfers or scratch}):
            rows = [r for r in transfers if _noise(r) == noise and model(r) == name] + [r for r in scratch if model(r) == name]
            self.add(self._table(rows, title=f"fine-tuned {self.split} top-1 % on {', '.join(transfer_datasets)} by pre-training subset ratio: {name}"
                                 + (f" (source labels {100 * noise:g} % noisy)" if noise else ""),
                                 value=lambda r: r.get(self.top1), column=lambda r: None if is_ref(r) else r["ratio"], reference=is_ref,
                                 column_label=percent))
            differences = difference_table(
                [r for r in rows if not is_ref(r)], title=f"fine-tuned {self.split} top-1 minus random (points), mean [95 % CI], paired over seeds: {name}",
                row=lambda r: r["method"], column=lambda r: r["ratio"], value=lambda r: r.get(self.top1), row_order=METHOD_ORDER,
                column_label=percent, note="pairs: same ratio and seed, so the same pre-training and fine-tuning seeds; CI from Student t "
                                           "with n − 1 degrees of freedom; * = p < 0.05 in the paired t-test")
            if differences.rows:
                self.add(differences)

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
                                     column_label=percent, fmt="{:.4f}"))
                self.add(self._table(rows, title=f"Dunn index change vs the full set at equal size (%){tag}", value=lambda r: r.get("change_pct"),
                                     column=lambda r: r["ratio"], column_label=percent, fmt="{:+.1f}"))
                if any(r.get("change_whole_pct") is not None for r in rows):
                    self.add(self._table(rows, title=f"Dunn index change vs the whole full set (%), the paper's comparison{tag}",
                                         value=lambda r: r.get("change_whole_pct"), column=lambda r: r["ratio"], column_label=percent, fmt="{:+.1f}"))
                    self.add(Text("The paper reports +92 % for its selection at 90 % in this comparison (Fig. 5). Unequal sizes favour the "
                                  "smaller set, so random selection gains here too: read a method against random's row, not against zero."))
        for r in (r for r in records if r["kind"] == "tsne"):
            path = self._inside(self.results / r["png"])
            if path.exists():
                self.add(Figure(f"tsne-{_slug(r['label'])}", path.read_bytes(),
                                 f"t-SNE of {r['features_from']} features: {r['method']} at {percent(r['ratio'])}, seed {r['seed']} (kept coloured by class, pruned grey)"))

    def _diagnostics_section(self, main: list[dict[str, Any]]) -> None:
        """What methods left in their selection directories (first seed): RL-Selector's per-epoch
        records as a plot and a table of the last epoch, pictures, plain-text logs."""
        found: list[Block] = []
        histories: dict[str, list[dict[str, Any]]] = {}
        targets: dict[str, float] = {}
        unreadable = 0
        seen = set()
        for r in sorted((r for r in main if r["kind"] == "eval"), key=lambda r: (_order_key(r["method"]), r["ratio"], r["seed"])):
            folder = self.results / r["selection"]["dir"]
            if folder in seen or not folder.is_dir():
                continue
            seen.add(folder)
            first_seed = min(x["seed"] for x in main if x["kind"] == "eval" and x["method"] == r["method"] and x["ratio"] == r["ratio"])
            if r["seed"] != first_seed:
                continue
            label = f"{r['method']} at {percent(r['ratio'])}, seed {r['seed']}{' noise ' + str(_noise(r)) if _noise(r) else ''}"
            for path in sorted(folder.rglob("*")):
                self._inside(path)
                if not path.is_file() or path.stat().st_size > MAX_DIAGNOSTIC_BYTES:
                    continue
                name = f"{label}: {path.relative_to(folder)}"
                if path.suffix == ".png":
                    found.append(Figure(f"diag-{_slug(r['selection']['dir'])}-{_slug(path.stem)}", path.read_bytes(), name))
                elif path.name == DIAGNOSTIC_RECORDS:
                    history, bad = _json_lines(path)
                    unreadable += bad
                    if history:
                        histories[label], targets[label] = history, r["ratio"]
                elif path.suffix in DIAGNOSTIC_LOG_SUFFIXES and "diag" in path.name.lower():
                    lines = path.read_text(errors="replace").splitlines()
                    found.append(Pre(name, "\n".join((["..."] if len(lines) > 40 else []) + lines[-40:])))
        natural = self._natural_ratios(main)
        if found or natural or histories:
            self.add(Heading(2, "Method diagnostics (from the selection directories, first seed)"))
        if histories:
            self.add(Figure("diag-rl-selector-epochs", diagnostics_plot(histories, targets),
                            f"RL-Selector's training by epoch ({DIAGNOSTIC_RECORDS} of each selection, first seed; dotted: the target ratio)"))
            last = [{"selection": label, "column": i, "value": history[-1].get(key)}
                    for label, history in histories.items() for i, key in enumerate(DIAGNOSTIC_COLUMNS)]
            never = [DIAGNOSTIC_COLUMNS[i].replace("_", " ") for i in range(len(DIAGNOSTIC_COLUMNS))
                     if all(_finite(x["value"]) is None for x in last if x["column"] == i)]
            self.add(build_table(last, title="RL-Selector at its last epoch (– = not recorded)", row=lambda x: x["selection"],
                                 column=lambda x: x["column"], value=lambda x: _finite(x["value"]), pair=lambda x: None,
                                 row_name="selection", row_order=list(histories), test=False, mark_best=False, fmt="{:.3g}",
                                 column_label=lambda i: DIAGNOSTIC_COLUMNS[i].replace("_", " "),
                                 note=f"not recorded in any selection's last epoch: {', '.join(never)}" if never else ""))
            if unreadable:
                self.add(Text(f"{unreadable} line(s) of {DIAGNOSTIC_RECORDS} were not JSON objects and are left out."))
        if natural:
            self.add(self._table(natural, title="natural kept share before band enforcement", mark_best=False, test=False,
                                 value=lambda r: r["natural_ratio"], column=lambda r: r["ratio"], column_label=percent, fmt="{:.3f}"))
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
            manifest = self._inside(self.results / r["selection"]["dir"] / MANIFEST)
            natural = read_json(manifest, fix=f"delete {manifest.parent}; the next run of the grid selects again").get("natural_ratio") \
                if manifest.is_file() else None
            if natural is not None:
                rows.append({**r, "natural_ratio": natural})
        return rows

    def _table(self, records: list[dict[str, Any]], *, title: str, value: Callable, column: Callable, **options: Any) -> Table:
        return build_table(records, title=title, row=lambda r: r["method"], column=column, value=value,
                           row_order=METHOD_ORDER, **options)

    def _inside(self, path: Path) -> Path:
        """``path`` itself, refused when it (or a link in it) leads outside the results directory."""
        resolve_inside(self.results, path, where=str(path),
                       fix="remove that link or file: the report reads only files inside the results directory")
        return path


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def _standing(table: Table, ranks: Table, focus: str) -> str:
    """``focus`` against the best other method of each column, in points of mean accuracy, with its
    rank and the rank's bootstrap range (or the one-seed caveat)."""
    parts = []
    for column in table.columns:
        ours = table.entry(focus, column) if focus in table.rows else None
        others = {row: table.entry(row, column) for row in table.rows if row not in (focus, *table.references)}
        others = {row: e for row, e in others.items() if e is not None}
        if ours is None or not others:
            continue
        best = max(others, key=lambda row: others[row].mean)
        gap = ours.mean - others[best].mean
        verdict = f"ahead of the best other ({best}, {others[best].mean:.2f}) by {gap:.2f}" if gap >= 0 else \
            f"behind {best} ({others[best].mean:.2f}) by {-gap:.2f}"
        rank = ranks.entry(focus, column)
        if rank is None:
            place = f"rank {1 + sum(e.mean > ours.mean for e in others.values())} of {len(others) + 1}"
        else:
            place = f"rank {rank.mean:.0f} of {len(others) + 1}"
        place += f" ({ONE_SEED})" if ours.n == 1 else "" if rank is None or rank.low is None else \
            f" (95 % bootstrap range {rank.low:.0f}–{rank.high:.0f})"
        parts.append(f"{table.column_label(column)}: {ours.mean:.2f}, {verdict}, {place}")
    return f"{focus} against the other methods (mean top-1, points): " + "; ".join(parts) + "." if parts else ""


def _json_lines(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of a JSON-lines file (NaN read as a float), and how many lines were not one."""
    records, bad = [], 0
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    return records, bad


def _finite(value: Any) -> float | None:
    """A finite number as a float; None (shown "–") for NaN, infinities, text or absence."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _noise(record: dict[str, Any]) -> float:
    return float((record.get("noise") or {}).get("rate") or 0.0)


def _setting(record: dict[str, Any]) -> str:
    t = record.get("train") or {}
    data = (record.get("data") or {}).get("name", "?").split("+noise")[0]
    recipe = f"{t.get('epochs')} ep, batch {t.get('batch_size')}, lr {t.get('lr')} {t.get('schedule')}, wd {t.get('weight_decay')}"
    return f"{data}, {record['model']} w{record['width']}, {recipe}"


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


def _recipe_text(train: dict[str, Any]) -> str:
    """A training recipe in a few words: epochs, batch, learning rate and schedule."""
    return f"{train['epochs']} epochs, batch {train['batch_size']}, lr {train['lr']:g} {train['schedule']}"
