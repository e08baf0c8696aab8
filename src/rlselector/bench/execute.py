"""Running a grid: every cell stored at once, a killed grid resumes without redoing or repeating a cell.

On start every planned cell whose result file exists is skipped (see :mod:`~rlselector.bench.store`
for the layout); a selection is computed once and shared by every cell that uses it; a training run
resumes from its checkpoint. After each cell the log says how many are done and left and, from the
mean seconds per cell kind so far, the time left.

Every training cell records its evaluation seed and a digest of its initial weights (the pairing of
:mod:`~rlselector.bench.plan`: equal within a (ratio, seed, evaluation model), whatever the method)
and, with a validation split, its final-epoch accuracy on it beside the test accuracy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..api import select
from ..data.base import Dataset, Split
from ..data.transforms import BatchTransform
from ..errors import InputError
from ..io import atomic_save_npz, atomic_torch_save, atomic_write_json, output_lock
from ..progress import make_progress
from ..selection import Selection, load_selection
from ..train import TrainConfig, build_for, evaluate, forward_split, train
from ..train.loop import CHECKPOINT, EPOCH_LOG
from .cost import selection_cost
from .data import carve_validation, load_grid_dataset, with_label_noise
from .eta import Eta
from .grid import BenchConfig
from .plan import Cell, cell_key, plan_cells
from .store import COST_FILE, FAILED, GRID_FILE, ResultStore

log = logging.getLogger(__name__)


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
        self.store = ResultStore(out)
        self.progress = progress
        self._datasets: dict[float, tuple[Dataset, np.ndarray]] = {}
        self._transfer_dataset: Dataset | None = None
        self._validation: dict[str, tuple[Split, dict[str, Any]]] = {}
        """"grid" / "transfer" → the held-out split of that dataset and its record (fraction, seed, n, file)."""
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
            transfer = self.transfer_dataset().fingerprint if self.config.transfer is not None else None
            cells = plan_cells(self.config, self.dataset(0.0).fingerprint, transfer)
            atomic_write_json(self.out / GRID_FILE, {"name": self.config.name, "grid": self.config.source,
                                                      "methods_run": list(self.config.methods), "recipe": asdict(self.config.recipe),
                                                      "validation": {k: info for k, (_, info) in self._validation.items()} or None,
                                                      "package_version": __version__, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
            done = self.store.stored_keys()
            pending = [c for c in cells if c.key not in done]
            self._keep = {c.source.key for c in pending if c.kind == "transfer" and c.source is not None}
            self._keep |= {c.features_from.key for c in pending if c.features_from is not None}
            log.info("grid %s: %d cells, %d already stored, %d to run → %s", self.config.name, len(cells), len(cells) - len(pending), len(pending), self.out)
            failed: list[str] = []
            eta_kinds = self._eta_kinds(pending)
            eta = Eta(list(eta_kinds.values()), done=len(cells) - len(pending))
            with make_progress("cells", enabled=self.progress, style="bold cyan") as bar:
                task = bar.add_task("grid", total=len(cells), completed=len(cells) - len(pending))
                for cell in pending:
                    bar.update(task, description=f"grid: {cell.label}")
                    started = time.perf_counter()
                    ok = self._run_cell(cell)
                    if not ok:
                        failed.append(cell.label)
                    eta.finished(eta_kinds[cell.key], time.perf_counter() - started, timed=ok)
                    log.info("grid %s: %s", self.config.name, eta.line())
                    bar.update(task, advance=1)
                bar.update(task, description="grid")
        summary = BenchSummary(self.out, len(cells), len(cells) - len(pending), len(pending) - len(failed), failed)
        if failed:
            raise InputError(f"{len(failed)} of {len(cells)} cells failed ({', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}); "
                             f"tracebacks in {self.out / FAILED}; run the grid again to retry them")
        return summary

    def _eta_kinds(self, pending: list[Cell]) -> dict[str, str]:
        """Each pending cell's kind for the ETA: ``eval+METHOD`` for the eval cell that will compute its
        selection (the first pending one of a selection not stored yet), else the cell's kind."""
        kinds, computing = {}, set()
        for cell in pending:
            kinds[cell.key] = cell.kind
            if cell.kind == "eval":
                key = cell_key(cell.spec["selection"])
                if key not in computing and not (self.store.selection_dir(cell, key) / "selection.json").exists():
                    computing.add(key)
                    kinds[cell.key] = f"eval+{cell.method}"
        return kinds

    def _run_cell(self, cell: Cell) -> bool:
        started = time.perf_counter()
        failure = self.store.failure_path(cell)
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
        self.store.write_record(cell, record)
        failure.unlink(missing_ok=True)
        # the result is stored; the checkpoint only served resume
        (self.store.run_dir(cell.key) / CHECKPOINT).unlink(missing_ok=True)
        return True

    # ------------------------------------------------------------------------------------
    # data
    # ------------------------------------------------------------------------------------
    def dataset(self, noise: float) -> Dataset:
        return self._dataset_and_flips(noise)[0]

    def _dataset_and_flips(self, noise: float) -> tuple[Dataset, np.ndarray]:
        if noise not in self._datasets:
            c = self.config
            if 0.0 not in self._datasets:
                clean = self._held_out("grid", load_grid_dataset(c.data, root=c.data_root, limit=c.limit, test_limit=c.test_limit, seed=c.data_seed))
                self._datasets[0.0] = (clean, np.zeros(0, dtype=np.int64))
            if noise:
                noisy, flipped = with_label_noise(self._datasets[0.0][0], noise, seed=c.noise_seed)
                atomic_save_npz(self.store.noise_path(noise, c.noise_seed), flipped=flipped,
                                noisy_labels=noisy.train.label_array, clean_labels=self._datasets[0.0][0].train.label_array)
                self._datasets[noise] = (noisy, flipped)
        return self._datasets[noise]

    def transfer_dataset(self) -> Dataset:
        if self._transfer_dataset is None:
            t = self.config.transfer
            self._transfer_dataset = self._held_out("transfer", load_grid_dataset(t.data, root=None, limit=t.limit, test_limit=t.test_limit,
                                                                                   seed=self.config.data_seed))
        return self._transfer_dataset

    def _held_out(self, which: str, dataset: Dataset) -> Dataset:
        """``dataset`` less its validation split (kept in ``_validation[which]``, its indices stored); as is without one."""
        c = self.config
        if not c.validation:
            return dataset
        remaining, held, indices = carve_validation(dataset, c.validation, seed=c.data_seed)
        path = self.store.validation_path(which, c.validation, c.data_seed)
        atomic_save_npz(path, validation=indices, train=np.setdiff1d(np.arange(len(dataset)), indices))
        self._validation[which] = (held, {"fraction": c.validation, "seed": c.data_seed, "n": len(held), "n_train": len(remaining),
                                          "file": self.store.relative(path)})
        return remaining

    def _noise_info(self, noise: float) -> dict[str, Any]:
        if not noise:
            return {"rate": 0.0, "seed": None, "flipped": 0}
        return {"rate": noise, "seed": self.config.noise_seed, "flipped": len(self._dataset_and_flips(noise)[1])}

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
        folder = self.store.selection_dir(cell, key)
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
                             out=folder, resume=folder.exists(), cache_dir=self.store.cache, proxy_config=self._proxy,
                             progress=self.progress, **self.config.runtime, **self.config.method_params.get(cell.method, {}))
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
        timings = sel.manifest.get("timings", {})
        shared = 0.0
        if timings.get("proxy_cached"):
            from ..selection.proxy import run_proxy

            shared = float(run_proxy(dataset, self._proxy, seed=seed, cache_dir=self.store.cache, progress=False,
                                     runtime=self.config.runtime)[1])
        return selection_cost(timings, shared)

    def _selection_info(self, cell: Cell) -> dict[str, Any]:
        sel, cost, folder = self.selection(cell)
        m = sel.manifest
        info = {"dir": self.store.relative(folder), "n": m["n"], "n_kept": m["n_kept"], "ratio_achieved": m["ratio_achieved"],
                "per_class": m.get("per_class", {}), "params": m.get("params", {}), "warnings": m.get("warnings", []), **cost}
        flipped = self._dataset_and_flips(cell.noise)[1]
        if len(flipped):
            info["flipped_kept"] = int(np.isin(sel.indices, flipped).sum())
        return info

    # ------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------
    def _train(self, cell: Cell, dataset: Dataset, recipe: TrainConfig, *, init: dict[str, torch.Tensor] | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
        run_dir = self.store.run_dir(cell.key)
        net = build_for(dataset, cell.model.name, cell.model.width, recipe.seed)
        reinitialised = load_backbone(net, init) if init is not None else []
        init_digest = weights_digest(net)
        resume = (run_dir / CHECKPOINT).exists()
        if not resume:  # a fresh start: drop the epoch log of an earlier run whose checkpoint is gone
            (run_dir / EPOCH_LOG).unlink(missing_ok=True)
        result = train(net, dataset, recipe, out_dir=run_dir, resume=resume, progress=self.progress, **self.config.runtime)
        if cell.key in self._keep:
            atomic_torch_save(self.store.model_path(cell.key), net.state_dict())
        held, validation = self._validation.get("transfer" if cell.kind in ("transfer", "scratch") else "grid", (None, None))
        val = evaluate(net, held, BatchTransform.for_dataset(dataset, augment=False), batch_size=recipe.eval_batch_size) if held is not None \
            else {"top1": None, "top5": None}
        info = {"top1": result.top1, "top5": result.top5, "val_top1": val["top1"], "val_top5": val["top5"], "validation": validation,
                "eval_seed": recipe.seed, "init_digest": init_digest, "epochs": result.epochs, "n_train": len(dataset),
                "train_s": round(sum(r["seconds"] for r in result.history), 3), "train": asdict(recipe),
                "recipe": self.config.recipe_name, "run_dir": self.store.relative(run_dir)}
        if self.config.runtime:
            info["runtime"] = dict(self.config.runtime)
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
        transfer_dataset = self.transfer_dataset()
        weights = self.weights(cell.source)
        _, info = self._train(cell, transfer_dataset, replace(self.config.transfer.recipe, seed=cell.seed), init=weights)
        source = self.store.read_record(cell.source)
        return {**info, "recipe": "transfer", "data": self._data_info(transfer_dataset), "source": {
            "key": cell.source.key, "label": cell.source.label, "top1": source.get("top1"), "data": source.get("data", {}).get("name"),
            "selection": source.get("selection")}}

    def _run_scratch(self, cell: Cell) -> dict[str, Any]:
        transfer_dataset = self.transfer_dataset()
        _, info = self._train(cell, transfer_dataset, replace(self.config.transfer.recipe, seed=cell.seed))
        return {**info, "recipe": "transfer", "data": self._data_info(transfer_dataset), "selection": None}

    def weights(self, cell: Cell) -> dict[str, torch.Tensor]:
        """Trained weights of a full-data or eval cell: stored ones, else its training is (re)run."""
        path = self.store.model_path(cell.key)
        if not path.exists():
            log.info("%s: trained weights not stored; training it again (%s)", cell.label, path)
            dataset = self.dataset(cell.noise)
            if cell.kind == "eval":
                dataset = self.selection(cell)[0].subset(dataset)
            self._keep.add(cell.key)
            self._train(cell, dataset, self._recipe(cell.seed))
            (self.store.run_dir(cell.key) / CHECKPOINT).unlink(missing_ok=True)
        return torch.load(path, map_location="cpu", weights_only=True)

    # ------------------------------------------------------------------------------------
    # analysis
    # ------------------------------------------------------------------------------------
    def features(self, full: Cell) -> np.ndarray:
        """Penultimate features of the full-data model on the un-augmented training set (cached)."""
        from ..data.transforms import BatchTransform

        path = self.store.features_path(full.key)
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
        return {**result, "features_from": cell.features_from.label, "selection_dir": self.store.relative(folder)}

    def _run_tsne(self, cell: Cell) -> dict[str, Any]:
        from .analysis import tsne_picture

        sel, _, folder = self.selection(cell)
        dataset = self.dataset(cell.noise)
        png = self.store.tsne_path(cell)
        tsne_picture(self.features(cell.features_from), dataset.train.label_array, sel.indices, png,
                     samples=self.config.analysis.tsne.samples, seed=cell.seed, classes=dataset.classes,
                     title=f"t-SNE of {cell.features_from.model.label} full-data features: {cell.method} keeps {100 * cell.ratio:.0f} % (seed {cell.seed})")
        return {"png": self.store.relative(png), "features_from": cell.features_from.label, "selection_dir": self.store.relative(folder)}


def weights_digest(net: torch.nn.Module) -> str:
    """The first 16 hex digits of sha256 over every tensor of ``net``'s state, in order: equal digests = equal weights."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_backbone(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every pre-trained tensor whose name and shape match, except the classifier (re-initialised
    for the new task); return the names left at their fresh initialisation."""
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if not k.startswith("classifier.") and k in own and own[k].shape == v.shape}
    net.load_state_dict({**own, **usable})
    return sorted(set(own) - set(usable))
