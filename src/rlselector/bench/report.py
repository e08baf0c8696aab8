"""``rlselector report DIR``: one self-contained HTML page and Markdown/CSV tables of a results directory.

Reads every stored cell (``cells/*.json``, ``analysis/*.json``) of a directory written by
:func:`~rlselector.bench.run_bench` (finished or not) and writes, under ``DIR/report/`` (the test
accuracy) or ``DIR/report-validation/`` (``split="validation"``: the accuracy on the grid's
validation split, the one to choose defaults on):

- ``index.html``: every table and figure, figures embedded as base64 PNG (one file to mail or open);
- ``report.md`` with the same tables, linking the PNGs in ``figures/``;
- ``summary.csv`` (one row per table entry: mean, std, n, best, p-value), ``cells.csv`` (one row per
  cell) and ``per_class.csv`` (kept samples per class of every selection).

The directory is read as untrusted input: a cell file lacking a field the report reads, or holding a
path that leads outside the directory, is refused with an :class:`~rlselector.errors.InputError`
naming the file and the field; text from it is escaped in every output (see :mod:`.render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import atomic_write_bytes
from . import render
from .sections import SPLITS, ReportBuilder
from .store import CELLS, ResultStore

REPORT_DIRS = {"test": "report", "validation": "report-validation"}
"""The folder of the report of each split."""


def write_report(results_dir: str | Path, *, split: str = "test") -> dict[str, Path]:
    """Write ``DIR/report/{index.html, report.md, summary.csv, cells.csv, per_class.csv}`` and the
    figures (``DIR/report-validation/`` for ``split="validation"``); return kind → path."""
    if split not in SPLITS:
        raise InputError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    results = Path(results_dir)
    if not results.is_dir():
        raise InputError(f"{results}: not a directory; give the --out directory of 'rlselector bench'")
    records = ResultStore(results).records()
    if not records:
        raise InputError(f"{results}: no stored cells ({results / CELLS}/*.json); run 'rlselector bench --out {results}' first")
    builder = ReportBuilder(results, records, split=split)
    builder.build()
    document = builder.document
    out = results / REPORT_DIRS[split]
    for figure in document.figures:
        atomic_write_bytes(out / "figures" / f"{figure.name}.png", figure.png)
    csvs = {
        "summary_csv": ("summary.csv", (row for t in document.tables for row in t.csv_rows())),
        "cells_csv": ("cells.csv", (_cell_row(r) for r in records)),
        "per_class_csv": ("per_class.csv", builder.per_class_rows),
    }
    return {
        "html": atomic_write_bytes(out / "index.html", render.html(document).encode()),
        "markdown": atomic_write_bytes(out / "report.md", render.markdown(document).encode()),
        **{kind: atomic_write_bytes(out / name, render.csv_text(rows).encode()) for kind, (name, rows) in csvs.items()},
    }


def _cell_row(record: dict[str, Any]) -> dict[str, Any]:
    """One row of cells.csv."""
    sel = record.get("selection") or {}
    return {
        "key": record["key"], "kind": record["kind"], "method": record.get("method"), "ratio": record.get("ratio"),
        "seed": record.get("seed"), "model": record.get("model"), "width": record.get("width"), "noise": float((record.get("noise") or {}).get("rate") or 0.0),
        "data": (record.get("data") or {}).get("name"), "top1": record.get("top1"), "top5": record.get("top5"),
        "val_top1": record.get("val_top1"), "val_top5": record.get("val_top5"), "eval_seed": record.get("eval_seed"),
        "n_train": record.get("n_train"), "n_kept": sel.get("n_kept"), "ratio_achieved": sel.get("ratio_achieved"),
        "selection_s": sel.get("selection_s"), "proxy_s": sel.get("proxy_s"), "cost_s": sel.get("cost_s"),
        "train_s": record.get("train_s"), "dunn_selected": record.get("dunn_selected"), "dunn_full": record.get("dunn_full"),
        "dunn_whole": record.get("dunn_whole"), "label": record.get("label"),
    }
