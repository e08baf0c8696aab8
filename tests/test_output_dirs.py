"""Output directories: one writer each (a second run is refused, naming the holder), shareable file
modes, strict JSON, and no litter from interrupted atomic writes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from rlselector.cli import app
from rlselector.errors import InputError
from rlselector.io import LOCK, atomic_write_json, output_lock, remove_stale_temporaries

runner = CliRunner()

HOLD = """
import sys, time, pathlib
from rlselector.io import output_lock
with output_lock(sys.argv[1], sys.argv[2]):
    pathlib.Path(sys.argv[3]).touch()
    time.sleep(60)
"""


@pytest.fixture
def held(tmp_path):
    """Another process holding the lock of ``tmp_path / 'out'`` as 'rlselector select'."""
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out"), "rlselector select --method random", str(ready)])
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert holder.poll() is None and time.monotonic() < deadline, "the lock holder did not start"
        time.sleep(0.05)
    yield tmp_path / "out", holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize(
    "command",
    [
        ["select", "--data", "digits", "--method", "random", "--seed", "1"],
        ["train", "--data", "digits", "--width", "4", "--epochs", "1"],
        ["quickstart", "--data", "digits", "--method", "random", "--recipe", "cpu-tiny"],
    ],
    ids=["select", "train", "quickstart"],
)
def test_a_second_writer_is_refused_naming_the_holder(held, command):
    out, pid = held
    result = runner.invoke(app, [*command, "--out", str(out), "--quiet"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "another 'rlselector select --method random'" in message and f"pid {pid}" in message
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # nothing of the refused run was written


def test_the_lock_is_released_with_its_holder(tmp_path):
    """A killed holder leaves no stale lock: the kernel drops it with the process."""
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "out"), "rlselector train", str(ready)])
    while not ready.exists():
        time.sleep(0.05)
    with pytest.raises(InputError, match="another 'rlselector train'"):
        with output_lock(tmp_path / "out", "second"):
            pass
    holder.kill()
    holder.wait()
    with output_lock(tmp_path / "out", "third"):
        pass
    assert not (tmp_path / "out" / LOCK).exists()


def test_selection_files_are_shareable_strict_and_litter_free(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "sel"
        out.mkdir()
        stale = out / ".selection.npz.k3j2h1.tmp"  # what a write killed before its rename leaves
        stale.write_bytes(b"partial")
        result = runner.invoke(app, ["select", "--data", "digits", "--method", "random", "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    assert sorted(p.name for p in out.iterdir()) == ["selection.json", "selection.npz"]
    for name in ("selection.json", "selection.npz"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644
    json.loads((out / "selection.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_non_finite_numbers_are_written_as_null(tmp_path):
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("nan"), "d": 2.5})
    text = (tmp_path / "x.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": None, "d": 2.5}


def test_only_atomic_write_temporaries_are_removed(tmp_path):
    (tmp_path / "deep").mkdir()
    for name in (".a.json.x1.tmp", "deep/.b.npz.y2.tmp", "keep.tmp", ".hidden"):
        (tmp_path / name).write_text("x")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [".hidden", "keep.tmp"]
