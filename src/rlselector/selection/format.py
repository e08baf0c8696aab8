"""The selection format every method writes, and the one-line loader.

A selection is a directory with two files:

- ``selection.npz``: ``indices`` (sorted kept training indices, int64) and ``scores`` (one float per
  training sample in original order; **higher = keep**, and the kept set is exactly the top
  ``len(indices)`` of ``scores``). ``raw_scores`` holds the method's own score when it has one
  (its direction is in the manifest).
- ``selection.json``: the manifest (method and parameters, ratio requested and achieved, N, kept,
  seed, dataset fingerprint, per-class counts, timings, package version).

Both are written atomically, the npz first: a directory with a manifest always has its arrays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import atomic_save_npz, atomic_write_json

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


def write_selection(out_dir: str | Path, selection: Selection) -> Path:
    """Write ``selection.npz`` then ``selection.json`` into ``out_dir`` atomically."""
    out_dir = Path(out_dir)
    arrays = {"indices": selection.indices.astype(np.int64), "scores": selection.scores.astype(np.float64)}
    if selection.raw_scores is not None:
        arrays["raw_scores"] = selection.raw_scores.astype(np.float64)
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
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as err:
        raise InputError(f"{manifest_path}: not valid JSON ({err}); re-run the selection") from err
    for key in ("method", "n", "n_kept", "dataset", "ratio_achieved"):
        if key not in manifest:
            raise InputError(f"{manifest_path}: field {key!r} is missing; re-run the selection")
    try:
        with np.load(arrays_path) as arrays:
            indices, scores = arrays["indices"], arrays["scores"]
            raw = arrays["raw_scores"] if "raw_scores" in arrays.files else None
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"{arrays_path}: unreadable or missing 'indices'/'scores' ({err}); re-run the selection") from err
    if len(scores) != manifest["n"] or len(indices) != manifest["n_kept"]:
        raise InputError(
            f"{arrays_path}: holds {len(indices)} indices and {len(scores)} scores but {manifest_path} "
            f"says n_kept={manifest['n_kept']}, n={manifest['n']}; the files do not belong together"
        )
    return Selection(indices=indices, scores=scores, manifest=manifest, raw_scores=raw, path=path)
