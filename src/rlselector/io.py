"""Atomic writes: a reader never sees a half-written file, a crash never leaves one behind; and the
one-writer lock of an output directory."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from .errors import InputError

LOCK = ".lock"
"""The lock file of an output directory; it names the process that holds it."""


TEMPORARY_SUFFIX = ".tmp"
"""Atomic writes go through ``.<name>.<random>.tmp`` beside their target (removed on start: see
:func:`remove_stale_temporaries`)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Write through ``write(fileobj)`` into a temporary file beside ``path``, fsync, then rename.

    The file gets the mode a plain ``open()`` would give (0666 less the umask): ``mkstemp``'s private
    0600 would keep a selection from the teammates it is shared with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Strict JSON: NaN and infinities are written as ``null`` (strict parsers reject ``NaN``)."""
    return atomic_write_bytes(path, (_strict_json(obj, indent=2) + "\n").encode())


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    return atomic_write(path, lambda handle: np.savez(handle, **arrays))


def atomic_torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    return atomic_write(path, lambda handle: torch.save(obj, handle))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line; a line is written in one call, so a crash loses at most that line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(_strict_json(record) + "\n")
        handle.flush()


def _strict_json(obj: Any, indent: int | None = None) -> str:
    return json.dumps(_finite(obj), indent=indent, sort_keys=True, default=_json_default, allow_nan=False)


def _finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (numpy's included) replaced by None."""
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: _finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    return obj


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@contextlib.contextmanager
def output_lock(out: str | os.PathLike, command: str, *subdirs: str) -> Iterator[None]:
    """One writer per output directory: an advisory ``flock`` on ``out/.lock`` (the kernel drops it
    when the holder dies, so a killed run never leaves a stale lock). The file names its holder
    (command, pid, host, start time), which the refusal of a second writer quotes; it is removed
    when the holder finishes, so a finished directory holds only its results.

    ``out`` is proved writable first and ``subdirs`` are created (and proved) once the lock is held,
    so an unusable directory is refused before any work and a refused run writes nothing.
    """
    import fcntl

    out = prepare_output_dir(out)
    path = out / LOCK
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.seek(0)
            holder = handle.read().strip() or "process"
            handle.close()
            raise InputError(f"{out}: another {holder} is writing into this directory; wait for it to finish or choose another --out") from err
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()  # the holder before us removed the file after we opened it: lock the new one
    try:
        prepare_output_dir(out, *subdirs)
        remove_stale_temporaries(out)
        handle.seek(0)
        handle.truncate()
        handle.write(f"'{command}' (pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiter that opened it re-checks the inode
        handle.close()


def remove_stale_temporaries(out: str | os.PathLike) -> int:
    """Delete the ``.<name>.<random>.tmp`` files an interrupted atomic write left under ``out``.

    Only the holder of :func:`output_lock` calls this, so no live write can be among them. Returns
    how many were removed.
    """
    removed = 0
    for tmp in Path(out).rglob(f".*{TEMPORARY_SUFFIX}"):
        if tmp.is_file():
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def prepare_output_dir(out: str | os.PathLike, *subdirs: str, option: str = "--out") -> Path:
    """Create ``out`` (and ``subdirs`` in it) and prove it writable, before any heavy work: a file in
    its place, a read-only mount or a path under /proc is refused now, not after an epoch."""
    out = Path(out)
    try:
        for folder in (out, *(out / sub for sub in subdirs)):
            folder.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe.", suffix=TEMPORARY_SUFFIX)
            probe.close()
    except (FileExistsError, NotADirectoryError) as err:
        raise InputError(f"{option} {out}: {err.filename} is a file, not a directory; choose another {option}") from err
    except OSError as err:
        raise InputError(f"{option} {out}: not writable ({err.strerror or err}); choose a directory you can write to") from err
    return out
