"""A grid's results directory: where each cell, selection, run and cache lives, and the stored cells
read back, checked (a crafted cell file cannot lead the report to a file outside the directory).

Layout::

    grid.json                     the grid of the latest run (its YAML mapping, resolved)
    cells/<label>-<key>.json      one finished training cell: full-data, eval, transfer, scratch
    analysis/<label>-<key>.json   one finished analysis cell (Dunn index; t-SNE with its .png)
    selections/<label>-<key>/     one selection (rlselector's format) + cost.json, shared by every
                                  evaluation model, transfer and analysis cell that uses it
    runs/<key>/                   a training run: checkpoint while it runs (resumed after a kill),
                                  log.jsonl, result.json; model.pt when a later cell reuses the weights
    features/<key>.npz            penultimate training features of a full-data model (analysis)
    noise/noise<p>-seed<s>.npz    the flipped training indices of a label-noise level
    validation/<data>-<f>-seed<s>.npz  the validation split: held-out and remaining training indices
    cache/                        proxy runs shared by the score-based methods
    failed/<key>.txt              the traceback of a cell that failed (retried on the next run)

A result file is written atomically once its cell is finished; a cell whose file exists is done.
One process writes at a time (the run holds :func:`~rlselector.io.output_lock`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..io import atomic_write_json
from .plan import ANALYSIS_KINDS, TRAINING_KINDS, Cell

GRID_FILE = "grid.json"
CELLS, ANALYSIS, SELECTIONS, RUNS, FEATURES, NOISE, VALIDATION, CACHE, FAILED = (
    "cells", "analysis", "selections", "runs", "features", "noise", "validation", "cache", "failed",
)
MODEL_FILE = "model.pt"
COST_FILE = "cost.json"

REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "": ("key", "label", "method", "ratio", "seed", "model", "width"),
    "eval": ("selection.dir", "selection.n_kept", "selection.cost_s"),
    "transfer": ("data.name",),
    "scratch": ("data.name",),
    "tsne": ("png", "features_from"),
    "dunn": ("dunn_full",),
}
"""Fields a stored cell must hold (not null) beyond ``kind``, since the report reads them: every
kind's (``""``), then each kind's own."""
PATH_FIELDS = ("png", "selection.dir", "selection_dir", "run_dir", "source.selection.dir")
"""Fields of a stored cell that hold a path, relative to the results directory."""
_RECOMPUTE = "delete it and run the grid again to recompute that cell"


class ResultStore:
    """The paths of one results directory, and its stored cells."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cache = root / CACHE

    def record_path(self, cell: Cell) -> Path:
        return self.root / (ANALYSIS if cell.kind in ANALYSIS_KINDS else CELLS) / f"{cell.label}-{cell.key}.json"

    def failure_path(self, cell: Cell) -> Path:
        return self.root / FAILED / f"{cell.label}-{cell.key}.txt"

    def run_dir(self, key: str) -> Path:
        return self.root / RUNS / key

    def model_path(self, key: str) -> Path:
        return self.run_dir(key) / MODEL_FILE

    def selection_dir(self, cell: Cell, key: str) -> Path:
        """The folder of the selection ``key`` that ``cell`` trains on or analyses."""
        noise = f"-n{cell.noise:g}" if cell.noise else ""
        return self.root / SELECTIONS / f"{cell.method}-r{cell.ratio:.2f}-s{cell.seed}{noise}-{key}"

    def features_path(self, key: str) -> Path:
        return self.root / FEATURES / f"{key}.npz"

    def noise_path(self, rate: float, seed: int) -> Path:
        return self.root / NOISE / f"noise{rate:g}-seed{seed}.npz"

    def validation_path(self, data: str, fraction: float, seed: int) -> Path:
        """The validation split of the grid's (``data="grid"``) or the transfer dataset (``"transfer"``)."""
        return self.root / VALIDATION / f"{data}-{fraction:g}-seed{seed}.npz"

    def tsne_path(self, cell: Cell) -> Path:
        return self.root / ANALYSIS / f"{cell.label}-{cell.key}.png"

    def relative(self, path: Path) -> str:
        """``path`` as stored in a cell file: relative to the results directory."""
        return str(path.relative_to(self.root))

    def stored_keys(self) -> set[str]:
        """Keys of the finished cells."""
        return {p.stem.rsplit("-", 1)[-1] for folder in (CELLS, ANALYSIS) for p in (self.root / folder).glob("*.json")}

    def write_record(self, cell: Cell, record: dict[str, Any]) -> None:
        atomic_write_json(self.record_path(cell), record)

    def read_record(self, cell: Cell) -> dict[str, Any]:
        """The stored record of ``cell``; empty when it is not stored."""
        path = self.record_path(cell)
        return read_json(path, fix=_RECOMPUTE) if path.exists() else {}

    def records(self) -> list[dict[str, Any]]:
        """Every stored cell, once each (files are keyed by content), checked: each holds the fields the
        report reads, and each path in it stays inside the results directory."""
        records = []
        for folder in (CELLS, ANALYSIS):
            for path in sorted((self.root / folder).glob("*.json")):
                records.append(self._checked(path, read_json(path, fix=_RECOMPUTE)))
        return records

    def _checked(self, path: Path, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict):
            raise InputError(f"{path}: a cell file holds a JSON object, not {type(record).__name__}; {_RECOMPUTE}")
        kind = record.get("kind")
        if kind is None:
            raise InputError(f"{path}: field 'kind' is missing, so this is no cell file of 'rlselector bench'; {_RECOMPUTE}")
        if kind not in TRAINING_KINDS + ANALYSIS_KINDS:
            raise InputError(f"{path}: field 'kind' is {kind!r}, not one of {', '.join(TRAINING_KINDS + ANALYSIS_KINDS)}; {_RECOMPUTE}")
        for name in REQUIRED_FIELDS[""] + REQUIRED_FIELDS.get(kind, ()):
            if _field(record, name) is None:
                raise InputError(f"{path}: field {name!r} is missing from this {kind} cell; {_RECOMPUTE}")
        for name in PATH_FIELDS:
            value = _field(record, name)
            if value is not None:
                where = f"{path}: field {name!r}"
                if not isinstance(value, str):
                    raise InputError(f"{where}: a path is a string, got {value!r}; {_RECOMPUTE}")
                resolve_inside(self.root, value, where=where,
                               fix=f"the paths of a cell file are relative to the results directory and stay inside it; {_RECOMPUTE}")
        return record


def resolve_inside(root: Path, relative: str | Path, *, where: str, fix: str) -> Path:
    """``root / relative`` with every link followed; refused unless it stays inside ``root``."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InputError(f"{where}: {str(relative)!r} leads outside the results directory {root} (to {path}); {fix}")
    return path


def read_json(path: Path, *, fix: str) -> Any:
    """The JSON content of ``path``; invalid JSON is refused with ``fix``."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); {fix}") from err


def _field(record: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted field name (``selection.dir``); None when a step is absent or null."""
    value: Any = record
    for step in dotted.split("."):
        value = value.get(step) if isinstance(value, dict) else None
        if value is None:
            return None
    return value
