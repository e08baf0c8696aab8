"""Checkpoints that cannot run code: written as tensors and plain values (numbers, strings, lists,
tuples, dicts), read back with ``torch.load(weights_only=True)``.

A pickle may name any callable to run while it loads, so a crafted ``checkpoint.pt`` could execute
code under ``--resume`` or ``--init-from``; the restricted unpickler refuses such a file. Hooks'
``state_dict()`` must therefore hold tensors and plain values only (no numpy arrays).
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError


def load_checkpoint(path: Path, *, fix: str) -> dict[str, Any]:
    """The checkpoint at ``path``, or an InputError naming the file and ``fix`` (what the user can
    do) when it holds anything but tensors and plain values or cannot be read (truncated, damaged)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{path}: holds objects other than tensors and plain values, which could run code when loaded "
            f"(or it was written by an older rlselector); it was not loaded. {fix}"
        ) from None
    except Exception as err:  # noqa: BLE001 - torch reports a cut or damaged file as RuntimeError, OSError, EOFError, KeyError ...
        raise InputError(f"{path}: cannot be read, the file is truncated or damaged ({type(err).__name__}). {fix}") from None
    if not isinstance(state, dict):
        raise InputError(f"{path}: is not an rlselector checkpoint. {fix}")
    return state


def rng_state() -> dict[str, Any]:
    """The global torch (CPU and, once in use, every GPU's), numpy and Python random states, as
    tensors and plain values."""
    kind, key, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "position": int(position),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": random.getstate(),  # a tuple of ints (and None): plain values already
    }
    if torch.cuda.is_initialized():  # dropout and other draws on the GPU use its own generators
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["key"].numpy().astype(np.uint32), numpy["position"], numpy["has_gauss"], numpy["cached_gaussian"]))
    random.setstate(state["python"])
