"""The selection format every method writes, and the one-line loader.

A selection is a directory with two files:

- ``selection.npz``: ``indices`` (sorted kept training indices, int64, positions in the dataset the
  selection was made on) and ``scores`` (one float per training sample in original order; **higher =
  keep**, and the kept set is exactly the top ``len(indices)`` of ``scores``). ``raw_scores`` holds
  the method's own score when it has one (its direction is in the manifest). ``sample_ids`` holds
  the kept samples' IDs where the source has them (file paths, Hugging Face row IDs) and
  ``parent_indices`` their indices in the full dataset when the selection was made on a subset
  (``--limit``).
- ``selection.json``: the manifest (method and parameters, ratio requested and achieved, N, kept,
  seed, dataset fingerprint, per-class counts, timings, package version).

Both are written atomically, the npz first: a directory with a manifest always has its arrays.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import atomic_save_npz, atomic_write_bytes, atomic_write_json

MANIFEST = "selection.json"
ARRAYS = "selection.npz"
FORMAT_VERSION = 1
SCORE_DIRECTION = "higher = keep"


@dataclass
class Selection:
    """A finished selection: kept indices, per-sample keep scores, and its manifest."""

    indices: np.ndarray
    """Sorted kept training indices."""
    scores: np.ndarray
    """One keep score per training sample, original order; higher = keep."""
    manifest: dict[str, Any]
    raw_scores: np.ndarray | None = None
    sample_ids: np.ndarray | None = None
    """The kept samples' IDs (paths, row IDs), in the order of ``indices``; None when the source has none."""
    parent_indices: np.ndarray | None = None
    """The kept samples' indices in the full dataset, when the selection was made on a subset (``--limit``)."""
    path: Path | None = field(default=None, compare=False)

    @property
    def method(self) -> str:
        return self.manifest["method"]

    @property
    def ratio(self) -> float:
        return self.manifest["ratio_achieved"]

    @property
    def fingerprint(self) -> str:
        return self.manifest["dataset"]["fingerprint"]

    @property
    def mask(self) -> np.ndarray:
        keep = np.zeros(len(self.scores), dtype=bool)
        keep[self.indices] = True
        return keep

    def subset(self, dataset):
        """The training subset this selection keeps; refused for a dataset with other content."""
        if dataset.fingerprint != self.fingerprint:
            where = f" ({self.path})" if self.path else ""
            raise InputError(
                f"selection{where} was made on dataset {self.manifest['dataset']['name']!r} with "
                f"fingerprint {self.fingerprint[:23]}..., but the dataset given is "
                f"{dataset.name!r} with fingerprint {dataset.fingerprint[:23]}...; load the same data "
                f"(same source, same --limit and seed) or make a new selection"
            )
        return dataset.subset(self.indices, tag=f"{self.method}-{self.ratio:.2f}")

    # --- the kept set in other libraries' terms --------------------------------------------
    def _sized(self, dataset: Any, what: str) -> None:
        if len(dataset) != len(self.scores):
            where = f" ({self.path})" if self.path else ""
            raise InputError(f"selection{where} covers {len(self.scores)} samples but the {what} given has {len(dataset)}; "
                             f"pass the dataset the selection was made on (same order, same --limit)")

    def torch_subset(self, dataset: Any):
        """``torch.utils.data.Subset`` of any map-style torch dataset in the selection's sample order."""
        from torch.utils.data import Subset

        self._sized(dataset, "torch dataset")
        return Subset(dataset, self.indices.tolist())

    def sampler(self, *, shuffle: bool = True, seed: int = 0):
        """A sampler over the kept indices for ``DataLoader(full_dataset, sampler=sel.sampler())``:
        shuffled each epoch from a seeded generator, or in order."""
        import torch
        from torch.utils.data import SubsetRandomSampler

        if not shuffle:
            return self.indices.tolist()
        return SubsetRandomSampler(self.indices.tolist(), generator=torch.Generator().manual_seed(seed))

    def hf_select(self, dataset: Any):
        """The kept rows of a Hugging Face ``datasets.Dataset`` (``dataset.select``)."""
        self._sized(dataset, "Hugging Face dataset")
        return dataset.select(self.indices.tolist())

    def to_csv(self, path: str | Path) -> Path:
        """One row per kept sample: ``index,sample_id,parent_index,score`` (written atomically)."""
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["index", "sample_id", "parent_index", "score"])
        for row, index in enumerate(self.indices):
            writer.writerow([
                int(index),
                "" if self.sample_ids is None else self.sample_ids[row],
                "" if self.parent_indices is None else int(self.parent_indices[row]),
                repr(float(self.scores[index])),
            ])
        return atomic_write_bytes(Path(path), buffer.getvalue().encode())


def write_selection(out_dir: str | Path, selection: Selection) -> Path:
    """Write ``selection.npz`` then ``selection.json`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    arrays = {"indices": selection.indices.astype(np.int64), "scores": selection.scores.astype(np.float64)}
    if selection.raw_scores is not None:
        arrays["raw_scores"] = selection.raw_scores.astype(np.float64)
    if selection.sample_ids is not None:
        ids = np.asarray(selection.sample_ids)
        arrays["sample_ids"] = ids.astype(str) if ids.dtype.kind in "OU" else ids.astype(np.int64)  # never an object array
    if selection.parent_indices is not None:
        arrays["parent_indices"] = np.asarray(selection.parent_indices, dtype=np.int64)
    atomic_save_npz(out_dir / ARRAYS, **arrays)
    atomic_write_json(out_dir / MANIFEST, selection.manifest)
    selection.path = out_dir
    return out_dir


def load_selection(path: str | Path) -> Selection:
    """Load a selection directory (or its ``selection.json``) written by any method.

    >>> sel = load_selection("runs/rl-0.5")        # doctest: +SKIP
    >>> subset = sel.subset(load_dataset("fashion-mnist"))  # doctest: +SKIP
    """
    path = Path(path)
    if path.name == MANIFEST:
        path = path.parent
    manifest_path, arrays_path = path / MANIFEST, path / ARRAYS
    for required in (manifest_path, arrays_path):
        if not required.exists():
            raise InputError(
                f"{required}: missing; a selection directory holds {MANIFEST} and {ARRAYS} "
                f"(written by 'rlselector select --out DIR')"
            )
    manifest = _read_manifest(manifest_path)
    try:
        with np.load(arrays_path, allow_pickle=False) as arrays:
            indices, scores = arrays["indices"], arrays["scores"]
            raw = arrays["raw_scores"] if "raw_scores" in arrays.files else None
            ids = arrays["sample_ids"] if "sample_ids" in arrays.files else None
            parents = arrays["parent_indices"] if "parent_indices" in arrays.files else None
    except (AttributeError, TypeError) as err:  # a .npy (one bare array) has no fields and is no context manager
        raise InputError(f"{arrays_path}: not a .npz archive of named arrays ({err}); re-run the selection") from err
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"{arrays_path}: unreadable or missing 'indices'/'scores' ({err}); re-run the selection") from err
    n, n_kept = manifest["n"], manifest["n_kept"]
    _check_indices(arrays_path, indices, n)
    if len(scores) != n or len(indices) != n_kept:
        raise InputError(
            f"{arrays_path}: holds {len(indices)} indices and {len(scores)} scores but {manifest_path} "
            f"says n_kept={n_kept}, n={n}; the files do not belong together"
        )
    for name, values in (("scores", scores), ("raw_scores", raw)):
        if values is None:
            continue
        if values.shape != (n,) or not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise InputError(f"{arrays_path}: field '{name}' must be {n} real numbers (one per sample), got shape {values.shape} dtype {values.dtype}")
    if not np.isfinite(scores).all():
        raise InputError(f"{arrays_path}: field 'scores' holds {int((~np.isfinite(scores)).sum())} NaN/inf values; keep scores are finite — re-run the selection")
    for name, values in (("sample_ids", ids), ("parent_indices", parents)):
        if values is not None and values.shape != indices.shape:
            raise InputError(f"{arrays_path}: field '{name}' must hold one entry per kept index ({len(indices)}), got shape {values.shape}")
    if parents is not None and not np.issubdtype(parents.dtype, np.integer):
        raise InputError(f"{arrays_path}: field 'parent_indices' must be integers, got dtype {parents.dtype}")
    return Selection(indices=indices.astype(np.int64), scores=scores.astype(np.float64), manifest=manifest, raw_scores=raw,
                     sample_ids=ids, parent_indices=parents, path=path)


MANIFEST_FIELDS: dict[str, tuple[type, ...]] = {
    "method": (str,), "n": (int,), "n_kept": (int,), "dataset": (dict,), "ratio_achieved": (int, float),
}
"""The manifest fields a loader relies on, with their JSON types."""
DATASET_FIELDS: dict[str, tuple[type, ...]] = {"name": (str,), "fingerprint": (str,)}


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, its fields of the right types; every refusal names the file and the field."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); re-run the selection") from err
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: must hold a JSON object, got {type(manifest).__name__}; re-run the selection")
    for table, fields, where in ((manifest, MANIFEST_FIELDS, ""), (manifest.get("dataset"), DATASET_FIELDS, "dataset.")):
        for key, types in fields.items():
            if key not in table:
                raise InputError(f"{path}: field {where + key!r} is missing; re-run the selection")
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, types):
                wanted = " or ".join("number" if t is float else {int: "integer", str: "text", dict: "object"}[t] for t in types)
                raise InputError(f"{path}: field {where + key!r} must be {wanted}, got {value!r}; re-run the selection")
    if manifest["n"] < 1 or not 0 <= manifest["n_kept"] <= manifest["n"]:
        raise InputError(f"{path}: fields 'n'={manifest['n']} and 'n_kept'={manifest['n_kept']} must satisfy 0 ≤ n_kept ≤ n, n ≥ 1")
    return manifest


def _check_indices(path: Path, indices: np.ndarray, n: int) -> None:
    """Kept indices are 1-D integers, strictly increasing (each sample once), within [0, n)."""
    if indices.ndim != 1 or not np.issubdtype(indices.dtype, np.integer):
        raise InputError(f"{path}: field 'indices' must be a 1-D integer array, got shape {indices.shape} dtype {indices.dtype}; re-run the selection")
    if len(indices) and (indices[0] < 0 or indices[-1] >= n or not (np.diff(indices) > 0).all()):
        if (np.diff(indices) <= 0).any():
            at = int(np.flatnonzero(np.diff(indices) <= 0)[0])
            raise InputError(f"{path}: field 'indices' must be strictly increasing (each sample once), but position {at + 1} holds {indices[at + 1]} after {indices[at]}; re-run the selection")
        raise InputError(f"{path}: field 'indices' must lie in [0, {n}), got values from {indices.min()} to {indices.max()}; re-run the selection")
