"""Planning a grid: every cell it holds, each keyed by a hash of everything that defines it.

A cell's ``key`` hashes its defining content (data content and limits, label noise, method, all its
parameters with the defaults filled in, proxy recipe, ratio, seed, model, width, training recipe; a
changed default is a new cell, never a stale one), so results of different grids can share a
directory and a cell is never computed twice.

Pairing: the evaluation seed of a training cell (its recipe's ``seed``: initial weights, batch order
and augmentation stream) is the grid seed of the cell, whatever the method. So for a given ratio,
seed and evaluation model every method's subset (and the full data) trains from the same initial
weights with the same augmentation stream, and methods are compared in pairs matched by (ratio,
seed, evaluation model).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

from ..api import get_method
from ..selection.method import params_record
from .grid import BenchConfig, EvalModel

TRAINING_KINDS = ("full", "eval", "transfer", "scratch")
"""Cells that train a model and report its test accuracy."""
ANALYSIS_KINDS = ("dunn", "tsne")
"""Cells that analyse a selection in the full-data model's feature space."""
FULL = "full-data"
"""The method name of the full-data reference rows."""
SCRATCH = "no pre-training"
"""The method name of the transfer reference trained from scratch on the transfer dataset."""


def cell_key(spec: dict[str, Any]) -> str:
    """The first 16 hex digits of sha256 of the canonical JSON of a cell's defining content."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Cell:
    kind: str
    """One of TRAINING_KINDS or ANALYSIS_KINDS."""
    label: str
    spec: dict[str, Any]
    noise: float
    seed: int
    method: str | None = None
    ratio: float | None = None
    model: EvalModel | None = None
    source: Cell | None = None
    """The cell whose trained weights (transfer) or selection and features (analysis) this one reads."""
    features_from: Cell | None = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = cell_key(self.spec)


def plan_cells(config: BenchConfig, data_fingerprint: str, transfer_fingerprint: str | None = None) -> list[Cell]:
    """Every cell of the grid, in run order: noise level, seed, then full data and each method.

    ``data_fingerprint`` is the clean training data's, ``transfer_fingerprint`` the transfer
    dataset's (needed when the grid has ``transfer``).
    """
    c = config
    data_id = {"data": c.data.partition(":")[0], "fingerprint": data_fingerprint, "limit": c.limit,
               "test_limit": c.test_limit, "data_seed": c.data_seed, **_validation_id(c)}
    amp = _amp_id(c)
    recipe = lambda seed: {**replace(c.recipe, seed=seed).identity(), **amp}
    transfer_id = _transfer_id(c, transfer_fingerprint) if c.transfer is not None else None
    cells: list[Cell] = []
    by_selection: dict[tuple, Cell] = {}
    full_cells: dict[tuple, Cell] = {}
    for noise in c.label_noise:
        noise_id = {"rate": noise, "seed": c.noise_seed if noise else None}
        tag = f"-n{noise:g}" if noise else ""
        for seed in c.seeds:
            if c.full_data:
                for model in c.models:
                    cell = Cell("full", f"full-s{seed}-{model.name}w{model.width}{tag}",
                                {"kind": "full", "data": data_id, "noise": noise_id, "seed": seed, "model": model.name,
                                 "width": model.width, "train": recipe(seed)},
                                noise, seed, FULL, 1.0, model)
                    full_cells[(noise, seed, model.name)] = cell
                    cells += [cell, *_transfer_cells(c, cell, transfer_id)]
            for method in c.methods:
                for ratio in c.ratios:
                    sel = selection_spec(c, data_id, noise_id, method, ratio, seed)
                    for model in c.models:
                        cell = Cell("eval", f"{method}-r{ratio:.2f}-s{seed}-{model.name}w{model.width}{tag}",
                                    {"kind": "eval", "selection": sel, "model": model.name, "width": model.width, "train": recipe(seed)},
                                    noise, seed, method, ratio, model)
                        by_selection.setdefault((noise, seed, method, ratio), cell)
                        cells += [cell, *_transfer_cells(c, cell, transfer_id)]
    if c.transfer is not None and c.transfer.scratch:
        for seed in c.seeds:
            for model in _transfer_models(c):
                cells.append(Cell("scratch", f"scratch-s{seed}-{model.name}w{model.width}",
                                  {"kind": "scratch", "target": transfer_id, "model": model.name, "width": model.width,
                                   "train": {**replace(c.transfer.recipe, seed=seed).identity(), **amp}},
                                  0.0, seed, SCRATCH, 1.0, model))
    cells += _analysis_cells(c, by_selection, full_cells)
    return cells


def selection_spec(config: BenchConfig, data_id: dict, noise_id: dict, method: str, ratio: float, seed: int) -> dict[str, Any]:
    params = params_record(get_method(method).make_params(**config.method_params.get(method, {})))
    return {"data": data_id, "noise": noise_id, "method": method, "ratio": ratio, "seed": seed,
            "params": params, "class_balanced": config.class_balanced, "proxy": config.proxy, **_amp_id(config)}


def _amp_id(config: BenchConfig) -> dict[str, Any]:
    """Mixed precision in a cell's identity; absent when off (the keys of float32 grids are unchanged)."""
    amp = config.runtime.get("amp", "off")
    return {"amp": amp} if amp != "off" else {}


def _validation_id(config: BenchConfig) -> dict[str, Any]:
    """The validation split in a data identity; absent without one (the keys of grids without it are unchanged)."""
    return {"validation": {"fraction": config.validation, "seed": config.data_seed}} if config.validation else {}


def _transfer_models(config: BenchConfig) -> list[EvalModel]:
    t = config.transfer
    return [m for m in config.models if not t.models or m.name in t.models] if t else []


def _transfer_id(config: BenchConfig, fingerprint: str | None) -> dict[str, Any]:
    """The transfer dataset's identity, stored as ``target`` in the transfer and scratch cells' specs
    (the old name, kept: renaming it would change the key of every stored transfer cell)."""
    if fingerprint is None:
        raise ValueError("a grid with transfer needs the transfer dataset's fingerprint to plan its cells")
    t = config.transfer
    return {"data": t.data.partition(":")[0], "fingerprint": fingerprint, "limit": t.limit,
            "test_limit": t.test_limit, "data_seed": config.data_seed, **_validation_id(config)}


def _transfer_cells(config: BenchConfig, source: Cell, transfer_id: dict[str, Any] | None) -> list[Cell]:
    t = config.transfer
    if t is None or source.model not in _transfer_models(config):
        return []
    spec = {"kind": "transfer", "source": source.key, "target": transfer_id,
            "train": {**replace(t.recipe, seed=source.seed).identity(), **_amp_id(config)}}
    return [Cell("transfer", f"transfer-{source.label}", spec, source.noise, source.seed, source.method, source.ratio,
                 source.model, source=source)]


def _analysis_cells(config: BenchConfig, by_selection: dict[tuple, Cell], full_cells: dict[tuple, Cell]) -> list[Cell]:
    a = config.analysis
    if a is None:
        return []
    cells = []
    for (noise, seed, method, ratio), source in by_selection.items():
        full = full_cells.get((noise, seed, a.model))
        if full is None:
            continue
        tag = f"-n{noise:g}" if noise else ""
        wanted = []
        if a.dunn and seed in a.seeds:
            wanted.append(("dunn", {"max_samples": a.max_samples}))
        if a.tsne is not None and (a.tsne.method, a.tsne.ratio, a.tsne.seed, a.tsne.noise) == (method, ratio, seed, noise):
            wanted.append(("tsne", {"samples": a.tsne.samples}))
        for kind, extra in wanted:
            spec = {"kind": kind, "selection": source.spec["selection"], "features": full.key, **extra}
            cells.append(Cell(kind, f"{kind}-{method}-r{ratio:.2f}-s{seed}-{a.model}{tag}", spec, noise, seed, method, ratio,
                              full.model, source=source, features_from=full))
    return cells
