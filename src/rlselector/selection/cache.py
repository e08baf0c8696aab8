"""One keyed on-disk cache for the stages a selection can reuse across runs: proxy runs, the target
network's features (cover-static) and the self-supervised encoder's embeddings (prototypes).

Every entry is one ``.npz`` named ``<kind>-<dataset slug>-<label>-<key[:16]>.npz``: ``kind`` says
what it holds, ``label`` is for the human reading the folder (model, width, seed), and ``key`` is the
sha256 of everything the content depends on (the dataset's fingerprint, the recipe, the seed, the
mixed precision of the training), so a changed input never reads a stale entry. Entries are written
atomically and read without pickle.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.base import Dataset
from ..io import atomic_save_npz
from ..train.distributed import DistributedContext

log = logging.getLogger(__name__)


def cache_key(identity: Any) -> str:
    """Hex sha256 of ``identity`` as canonical JSON (sorted keys; tuples as lists, paths as text)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class ArtifactCache:
    """The cache folder of a selection run (``--cache-dir``)."""

    root: Path
    amp: str = "off"
    """Mixed precision (train()'s ``amp``) of the trainings whose outputs the entries hold; every kind
    here comes from a trained network and mixed precision changes its numbers, so it is part of each
    key. The device is not: entries made on a CPU are reused on a GPU and the other way round."""

    def path(self, kind: str, dataset: Dataset, label: str, identity: Any) -> Path:
        """Where the entry of ``kind`` for ``identity`` lives (it may not exist yet)."""
        if self.amp != "off":  # float32 entries keep the names they always had, so existing caches stay valid
            label, identity = f"{label}-{self.amp}", {"identity": identity, "amp": self.amp}
        return Path(self.root) / f"{kind}-{dataset.file_slug}-{label}-{cache_key(identity)[:16]}.npz"

    def load(self, path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of an entry, or None when it is absent or unreadable (then it is recomputed)."""
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            log.warning("ignoring unreadable cache entry %s (%s); computing it again", path, err)
            return None

    def store(self, path: Path, **arrays: np.ndarray) -> Path:
        """Write an entry atomically; under torchrun only rank 0 writes (every rank computed the same)."""
        if not DistributedContext.current().is_main:
            return path
        return atomic_save_npz(path, **arrays)
