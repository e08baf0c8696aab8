"""The grid runner: every cell stored at once, a killed grid resumes without redoing or repeating a cell.

Layout of a results directory::

    grid.json                     the grid of the latest run (its YAML mapping, resolved)
    cells/<label>-<key>.json      one finished training cell: full-data, eval, transfer, scratch
    analysis/<label>-<key>.json   one finished analysis cell (Dunn index; t-SNE with its .png)
    selections/<label>-<key>/     one selection (rlselector's format) + cost.json, shared by every
                                  evaluation model, transfer and analysis cell that uses it
    runs/<key>/                   a training run: checkpoint while it runs (resumed after a kill),
                                  log.jsonl, result.json; model.pt when a later cell reuses the weights
    features/<key>.npz            penultimate training features of a full-data model (analysis)
    noise/noise<p>-seed<s>.npz    the flipped training indices of a label-noise level
    cache/                        proxy runs shared by the score-based methods
    failed/<key>.txt              the traceback of a cell that failed (retried on the next run)

A cell's ``key`` is a hash of everything that defines it (data content and limits, label noise,
method, all its parameters with the defaults filled in, proxy recipe, ratio, seed, model, width,
training recipe; a changed default is a new cell, never a stale one), so results
of different grids can share a directory and a cell is never computed twice. A result file is
written atomically once the cell is finished; on start, every cell whose file exists is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..version import __version__
from ..data.base import Dataset
from ..errors import InputError
from ..io import atomic_save_npz, atomic_torch_save, atomic_write_json, output_lock
from ..progress import make_progress
from ..api import get_method, select
from ..selection import Selection, load_selection
from ..selection.method import params_record
from ..train import TrainConfig, build_for, forward_split, train
from ..train.loop import CHECKPOINT, EPOCH_LOG
from .config import BenchConfig, EvalModel
from .data import load_grid_dataset, with_label_noise

log = logging.getLogger(__name__)

CELLS, ANALYSIS, SELECTIONS, RUNS, FEATURES, NOISE, CACHE, FAILED = (
    "cells", "analysis", "selections", "runs", "features", "noise", "cache", "failed",
)
MODEL_FILE = "model.pt"
COST_FILE = "cost.json"
FULL = "full-data"
"""The method name of the full-data reference rows."""
SCRATCH = "no pre-training"
"""The method name of the transfer reference trained from scratch on the target."""


def cell_key(spec: dict[str, Any]) -> str:
    """The first 16 hex digits of sha256 of the canonical JSON of a cell's defining content."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class Cell:
    kind: str
    """full, eval, transfer, scratch, dunn or tsne."""
    label: str
    spec: dict[str, Any]
    noise: float
    seed: int
    method: str | None = None
    ratio: float | None = None
    model: EvalModel | None = None
    source: "Cell | None" = None
    """The cell whose trained weights (transfer) or selection and features (analysis) this one reads."""
    features_from: "Cell | None" = None
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = cell_key(self.spec)

    @property
    def folder(self) -> str:
        return ANALYSIS if self.kind in ("dunn", "tsne") else CELLS

    @property
    def filename(self) -> str:
        return f"{self.label}-{self.key}.json"


@dataclass
class BenchSummary:
    out: Path
    total: int
    skipped: int
    computed: int
    failed: list[str]


def run_bench(config: BenchConfig, out_dir: str | Path, progress: bool = True) -> BenchSummary:
    """Run every cell of ``config`` not yet stored in ``out_dir``; return what was done.

    Cells that fail are recorded in ``failed/`` and retried on the next run; the other cells still
    run, and an :class:`InputError` listing the failures is raised at the end.
    """
    return GridRunner(config, Path(out_dir), progress=progress).run()


class GridRunner:
    def __init__(self, config: BenchConfig, out: Path, *, progress: bool) -> None:
        self.config = config
        self.out = out
        self.progress = progress
        self.recipe_name = config.recipe_name
        self._datasets: dict[float, tuple[Dataset, np.ndarray]] = {}
        self._target: Dataset | None = None
        self._selection: tuple[str, Selection, dict[str, Any]] | None = None
        self._selection_errors: dict[str, Exception] = {}
        self._keep: set[str] = set()
        """Cells whose trained weights a later cell reads (transfer, analysis features): model.pt is kept."""
        self._proxy = config.proxy_config()

    # ------------------------------------------------------------------------------------
    def run(self) -> BenchSummary:
        self.out.mkdir(parents=True, exist_ok=True)
        with output_lock(self.out, "rlselector bench"):
            if self.config.threads:
                torch.set_num_threads(self.config.threads)
            atomic_write_json(self.out / "grid.json", {"name": self.config.name, "grid": self.config.source,
                                                        "recipe": asdict(self.config.recipe), "package_version": __version__,
                                                        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            clean = self.dataset(0.0)
            cells = self.plan(clean)
            done = {p.stem.rsplit("-", 1)[-1] for folder in (CELLS, ANALYSIS) for p in (self.out / folder).glob("*.json")}
            pending = [c for c in cells if c.key not in done]
            self._keep = {c.source.key for c in pending if c.kind == "transfer" and c.source is not None}
            self._keep |= {c.features_from.key for c in pending if c.features_from is not None}
            log.info("grid %s: %d cells, %d already stored, %d to run → %s", self.config.name, len(cells), len(cells) - len(pending), len(pending), self.out)
            failed: list[str] = []
            with make_progress("cells", enabled=self.progress, style="bold cyan") as bar:
                task = bar.add_task("grid", total=len(cells), completed=len(cells) - len(pending))
                for cell in pending:
                    bar.update(task, description=f"grid: {cell.label}")
                    if not self._run_cell(cell):
                        failed.append(cell.label)
                    bar.update(task, advance=1)
                bar.update(task, description="grid")
        summary = BenchSummary(self.out, len(cells), len(cells) - len(pending), len(pending) - len(failed), failed)
        if failed:
            raise InputError(f"{len(failed)} of {len(cells)} cells failed ({', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}); "
                             f"tracebacks in {self.out / FAILED}; run the grid again to retry them")
        return summary

    def _run_cell(self, cell: Cell) -> bool:
        started = time.perf_counter()
        failure = self.out / FAILED / f"{cell.label}-{cell.key}.txt"
        try:
            record = getattr(self, f"_run_{cell.kind}")(cell)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # noqa: BLE001 - one failing cell must not stop the grid
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(f"cell {cell.label} ({cell.key})\n{json.dumps(cell.spec, indent=2, default=str)}\n\n{traceback.format_exc()}")
            log.error("cell %s failed: %s (traceback in %s)", cell.label, err, failure)
            return False
        record = {
            "key": cell.key, "kind": cell.kind, "label": cell.label, "grid": self.config.name,
            "noise": self._noise_info(cell.noise), "seed": cell.seed, "method": cell.method, "ratio": cell.ratio,
            "model": cell.model.name if cell.model else None, "width": cell.model.width if cell.model else None,
            **record,
            "wall_s": round(time.perf_counter() - started, 3), "package_version": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "spec": cell.spec,
        }
        atomic_write_json(self.out / cell.folder / cell.filename, record)
        failure.unlink(missing_ok=True)
        checkpoint = self.out / RUNS / cell.key / CHECKPOINT
        checkpoint.unlink(missing_ok=True)  # the result is stored; the checkpoint only served resume
        return True

    # ------------------------------------------------------------------------------------
    # planning
    # ------------------------------------------------------------------------------------
    def plan(self, clean: Dataset) -> list[Cell]:
        """Every cell of the grid, in run order: noise level, seed, then full data and each method."""
        c = self.config
        data_id = {"data": c.data.partition(":")[0], "fingerprint": clean.fingerprint, "limit": c.limit,
                   "test_limit": c.test_limit, "data_seed": c.data_seed}
        recipe = lambda seed: asdict(replace(c.recipe, seed=seed))  # noqa: E731
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
                        cells += [cell, *self._transfer_cells(cell)]
                for method in c.methods:
                    for ratio in c.ratios:
                        sel = self.selection_spec(data_id, noise_id, method, ratio, seed)
                        for model in c.models:
                            cell = Cell("eval", f"{method}-r{ratio:.2f}-s{seed}-{model.name}w{model.width}{tag}",
                                        {"kind": "eval", "selection": sel, "model": model.name, "width": model.width, "train": recipe(seed)},
                                        noise, seed, method, ratio, model)
                            by_selection.setdefault((noise, seed, method, ratio), cell)
                            cells += [cell, *self._transfer_cells(cell)]
        if c.transfer is not None and c.transfer.scratch:
            for seed in c.seeds:
                for model in self._transfer_models():
                    cells.append(Cell("scratch", f"scratch-s{seed}-{model.name}w{model.width}",
                                      {"kind": "scratch", "target": self._target_id(), "model": model.name, "width": model.width,
                                       "train": asdict(replace(c.transfer.recipe, seed=seed))},
                                      0.0, seed, SCRATCH, 1.0, model))
        cells += self._analysis_cells(by_selection, full_cells)
        return cells

    def selection_spec(self, data_id: dict, noise_id: dict, method: str, ratio: float, seed: int) -> dict[str, Any]:
        c = self.config
        params = params_record(get_method(method).make_params(**c.method_params.get(method, {})))
        return {"data": data_id, "noise": noise_id, "method": method, "ratio": ratio, "seed": seed,
                "params": params, "class_balanced": c.class_balanced, "proxy": c.proxy}

    def _transfer_models(self) -> list[EvalModel]:
        t = self.config.transfer
        return [m for m in self.config.models if not t.models or m.name in t.models] if t else []

    def _target_id(self) -> dict[str, Any]:
        t = self.config.transfer
        return {"data": t.data.partition(":")[0], "fingerprint": self.target().fingerprint, "limit": t.limit,
                "test_limit": t.test_limit, "data_seed": self.config.data_seed}

    def _transfer_cells(self, source: Cell) -> list[Cell]:
        t = self.config.transfer
        if t is None or source.model not in self._transfer_models():
            return []
        spec = {"kind": "transfer", "source": source.key, "target": self._target_id(),
                "train": asdict(replace(t.recipe, seed=source.seed))}
        return [Cell("transfer", f"transfer-{source.label}", spec, source.noise, source.seed, source.method, source.ratio,
                     source.model, source=source)]

    def _analysis_cells(self, by_selection: dict[tuple, Cell], full_cells: dict[tuple, Cell]) -> list[Cell]:
        a = self.config.analysis
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

    # ------------------------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------------------------
    def dataset(self, noise: float) -> Dataset:
        return self._dataset_and_flips(noise)[0]

    def _dataset_and_flips(self, noise: float) -> tuple[Dataset, np.ndarray]:
        if noise not in self._datasets:
            c = self.config
            if 0.0 not in self._datasets:
                clean = load_grid_dataset(c.data, root=c.data_root, limit=c.limit, test_limit=c.test_limit, seed=c.data_seed)
                self._datasets[0.0] = (clean, np.zeros(0, dtype=np.int64))
            if noise:
                noisy, flipped = with_label_noise(self._datasets[0.0][0], noise, seed=c.noise_seed)
                atomic_save_npz(self.out / NOISE / f"noise{noise:g}-seed{c.noise_seed}.npz", flipped=flipped,
                                noisy_labels=noisy.train.label_array, clean_labels=self._datasets[0.0][0].train.label_array)
                self._datasets[noise] = (noisy, flipped)
        return self._datasets[noise]

    def target(self) -> Dataset:
        if self._target is None:
            t = self.config.transfer
            self._target = load_grid_dataset(t.data, root=None, limit=t.limit, test_limit=t.test_limit, seed=self.config.data_seed)
        return self._target

    def _noise_info(self, noise: float) -> dict[str, Any]:
        if not noise:
            return {"rate": 0.0, "seed": None, "flipped": 0}
        return {"rate": noise, "seed": self.config.noise_seed, "flipped": int(len(self._dataset_and_flips(noise)[1]))}

    @staticmethod
    def _data_info(dataset: Dataset) -> dict[str, Any]:
        return {"name": dataset.name, "n_train": len(dataset), "n_test": len(dataset.test) if dataset.test is not None else 0,
                "num_classes": dataset.num_classes, "classes": list(dataset.classes), "fingerprint": dataset.fingerprint}

    # ------------------------------------------------------------------------------------
    # selections
    # ------------------------------------------------------------------------------------
    def selection(self, cell: Cell) -> tuple[Selection, dict[str, Any], Path]:
        """The cell's selection: loaded if stored, else computed once and stored (with its cost)."""
        spec = cell.spec["selection"] if "selection" in cell.spec else cell.source.spec["selection"]
        key = cell_key(spec)
        folder = self.out / SELECTIONS / f"{cell.method}-r{cell.ratio:.2f}-s{cell.seed}{f'-n{cell.noise:g}' if cell.noise else ''}-{key}"
        if self._selection is not None and self._selection[0] == key:
            return self._selection[1], self._selection[2], folder
        if key in self._selection_errors:
            raise RuntimeError(f"selection {folder.name} failed earlier in this run: {self._selection_errors[key]}")
        dataset = self.dataset(cell.noise)
        try:
            if (folder / "selection.json").exists():
                sel = load_selection(folder)
            else:
                sel = select(dataset, cell.method, cell.ratio, cell.seed, class_balanced=self.config.class_balanced,
                             out=folder, resume=folder.exists(), cache_dir=self.out / CACHE, proxy_config=self._proxy,
                             progress=self.progress, **self.config.method_params.get(cell.method, {}))
            cost_file = folder / COST_FILE
            cost = json.loads(cost_file.read_text()) if cost_file.exists() else self._cost(sel, dataset, cell.seed)
            if not cost_file.exists():
                atomic_write_json(cost_file, cost)
        except Exception as err:
            self._selection_errors[key] = err
            raise
        self._selection = (key, sel, cost)
        return sel, cost, folder

    def _cost(self, sel: Selection, dataset: Dataset, seed: int) -> dict[str, Any]:
        """Selection cost in seconds: the method's own time (with any cached stage it reused) plus its proxy training.

        The proxy run is shared by every score-based method of a (data, seed); a method that found
        it cached is charged the run's stored training time, so each method's cost is what it
        would take alone.
        """
        timings = sel.manifest.get("timings", {})
        own, proxy = float(timings.get("selection_s", 0.0)), float(timings.get("proxy_s", 0.0))
        own += float(timings.get("reused_s", 0.0))  # a stage read from a cache (target, encoder) costs what training it did
        shared = 0.0
        if timings.get("proxy_cached"):
            from ..selection.proxy import run_proxy

            shared = float(run_proxy(dataset, self._proxy, seed=seed, cache_dir=self.out / CACHE, progress=False)[1])
        return {"selection_s": own, "proxy_s": proxy, "proxy_cached": bool(timings.get("proxy_cached", False)),
                "proxy_shared_s": shared, "cost_s": own + proxy + shared}

    def _selection_info(self, cell: Cell) -> dict[str, Any]:
        sel, cost, folder = self.selection(cell)
        m = sel.manifest
        info = {"dir": str(folder.relative_to(self.out)), "n": m["n"], "n_kept": m["n_kept"], "ratio_achieved": m["ratio_achieved"],
                "per_class": m.get("per_class", {}), "params": m.get("params", {}), "warnings": m.get("warnings", []), **cost}
        flipped = self._dataset_and_flips(cell.noise)[1]
        if len(flipped):
            info["flipped_kept"] = int(np.isin(sel.indices, flipped).sum())
        return info

    # ------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------
    def _train(self, cell: Cell, dataset: Dataset, recipe: TrainConfig, *, init: dict[str, torch.Tensor] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        run_dir = self.out / RUNS / cell.key
        net = build_for(dataset, cell.model.name, cell.model.width, recipe.seed)
        reinitialised = load_backbone(net, init) if init is not None else []
        resume = (run_dir / CHECKPOINT).exists()
        if not resume:  # a fresh start: drop the epoch log of an earlier run whose checkpoint is gone
            (run_dir / EPOCH_LOG).unlink(missing_ok=True)
        result = train(net, dataset, recipe, out_dir=run_dir, resume=resume, progress=self.progress)
        if cell.key in self._keep:
            atomic_torch_save(run_dir / MODEL_FILE, net.state_dict())
        info = {"top1": result.top1, "top5": result.top5, "epochs": result.epochs, "n_train": len(dataset),
                "train_s": round(sum(r["seconds"] for r in result.history), 3), "train": asdict(recipe),
                "recipe": self.recipe_name, "run_dir": str(run_dir.relative_to(self.out))}
        if init is not None:
            info["reinitialised"] = reinitialised
        log.info("%s: top-1 %.2f %%", cell.label, result.top1 if result.top1 is not None else float("nan"))
        return net, info

    def _recipe(self, seed: int) -> TrainConfig:
        return replace(self.config.recipe, seed=seed)

    def _run_full(self, cell: Cell) -> dict[str, Any]:
        dataset = self.dataset(cell.noise)
        _, info = self._train(cell, dataset, self._recipe(cell.seed))
        return {**info, "data": self._data_info(dataset), "selection": None}

    def _run_eval(self, cell: Cell) -> dict[str, Any]:
        dataset = self.dataset(cell.noise)
        sel, _, _ = self.selection(cell)
        _, info = self._train(cell, sel.subset(dataset), self._recipe(cell.seed))
        return {**info, "data": self._data_info(dataset), "selection": self._selection_info(cell)}

    def _run_transfer(self, cell: Cell) -> dict[str, Any]:
        target = self.target()
        weights = self.weights(cell.source)
        _, info = self._train(cell, target, replace(self.config.transfer.recipe, seed=cell.seed), init=weights)
        source = json.loads(self._result_path(cell.source).read_text()) if self._result_path(cell.source).exists() else {}
        return {**info, "recipe": "transfer", "data": self._data_info(target), "source": {
            "key": cell.source.key, "label": cell.source.label, "top1": source.get("top1"), "data": source.get("data", {}).get("name"),
            "selection": source.get("selection")}}

    def _run_scratch(self, cell: Cell) -> dict[str, Any]:
        target = self.target()
        _, info = self._train(cell, target, replace(self.config.transfer.recipe, seed=cell.seed))
        return {**info, "recipe": "transfer", "data": self._data_info(target), "selection": None}

    def _result_path(self, cell: Cell) -> Path:
        return self.out / cell.folder / cell.filename

    def weights(self, cell: Cell) -> dict[str, torch.Tensor]:
        """Trained weights of a full-data or eval cell: stored ones, else its training is (re)run."""
        path = self.out / RUNS / cell.key / MODEL_FILE
        if not path.exists():
            log.info("%s: trained weights not stored; training it again (%s)", cell.label, path)
            dataset = self.dataset(cell.noise)
            if cell.kind == "eval":
                dataset = self.selection(cell)[0].subset(dataset)
            self._keep.add(cell.key)
            self._train(cell, dataset, self._recipe(cell.seed))
            (self.out / RUNS / cell.key / CHECKPOINT).unlink(missing_ok=True)
        return torch.load(path, map_location="cpu", weights_only=True)

    # ------------------------------------------------------------------------------------
    # analysis
    # ------------------------------------------------------------------------------------
    def features(self, full: Cell) -> np.ndarray:
        """Penultimate features of the full-data model on the un-augmented training set (cached)."""
        from ..data.transforms import BatchTransform

        path = self.out / FEATURES / f"{full.key}.npz"
        if path.exists():
            with np.load(path) as stored:
                return stored["features"]
        dataset = self.dataset(full.noise)
        net = build_for(dataset, full.model.name, full.model.width, full.seed)
        net.load_state_dict(self.weights(full))
        features, _ = forward_split(net, dataset.train, BatchTransform.for_dataset(dataset, augment=False))
        atomic_save_npz(path, features=features.astype(np.float32))
        return features

    def _run_dunn(self, cell: Cell) -> dict[str, Any]:
        from .analysis import selection_dunn

        sel, _, folder = self.selection(cell)
        labels = self.dataset(cell.noise).train.label_array
        result = selection_dunn(self.features(cell.features_from), labels, sel.indices, max_samples=self.config.analysis.max_samples, seed=cell.seed)
        return {**result, "features_from": cell.features_from.label, "selection_dir": str(folder.relative_to(self.out))}

    def _run_tsne(self, cell: Cell) -> dict[str, Any]:
        from .analysis import tsne_picture

        sel, _, folder = self.selection(cell)
        dataset = self.dataset(cell.noise)
        png = self.out / ANALYSIS / f"{cell.label}-{cell.key}.png"
        tsne_picture(self.features(cell.features_from), dataset.train.label_array, sel.indices, png,
                     samples=self.config.analysis.tsne.samples, seed=cell.seed,
                     title=f"t-SNE of {cell.features_from.model.label} full-data features: {cell.method} keeps {100 * cell.ratio:.0f} % (seed {cell.seed})")
        return {"png": str(png.relative_to(self.out)), "features_from": cell.features_from.label, "selection_dir": str(folder.relative_to(self.out))}


def load_backbone(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every pre-trained tensor whose name and shape match, except the classifier (re-initialised
    for the new task); return the names left at their fresh initialisation."""
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if not k.startswith("classifier.") and k in own and own[k].shape == v.shape}
    net.load_state_dict({**own, **usable})
    return sorted(set(own) - set(usable))
