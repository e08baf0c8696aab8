"""A grid killed with SIGKILL at any moment and started again skips finished cells, redoes none twice,
reports none twice."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from rlselector.bench import load_bench_config, run_bench
from rlselector.bench.report import write_report

GRID = {
    "name": "killed", "data": "digits", "limit": 300, "methods": ["random"], "ratios": [0.3, 0.5, 0.7], "seeds": [0, 1],
    "models": [{"name": "resnet18", "width": 4}], "recipe": {"base": "cpu-tiny", "epochs": 2, "batch_size": 32},
    "analysis": False, "threads": 1,
}
CELLS = 2 * 3 + 2  # methods x ratios x seeds, plus full data per seed


def _bench(config: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "rlselector.cli", "bench", "--config", str(config), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def _state(folder: Path, pattern: str) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob(pattern)}


def test_sigkill_then_resume(tmp_path):
    config, out = tmp_path / "grid.yaml", tmp_path / "out"
    config.write_text(yaml.safe_dump(GRID))
    process = _bench(config, out)
    deadline = time.monotonic() + 240
    while not list((out / "cells").glob("*.json")):
        assert process.poll() is None, process.stdout.read().decode()
        assert time.monotonic() < deadline, "no cell finished in time"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL

    finished = _state(out, "cells/*.json")
    selections = _state(out, "selections/*/selection.json")
    assert 0 < len(finished) < CELLS, "the grid must be killed part-way for this test to mean anything"

    summary = run_bench(load_bench_config(path=config), out, progress=False)
    assert (summary.total, summary.skipped, summary.computed) == (CELLS, len(finished), CELLS - len(finished))
    after = _state(out, "cells/*.json")
    assert len(after) == CELLS
    for name, (mtime, content) in finished.items():  # finished cells were not recomputed
        assert after[name] == (mtime, content)
    for name, state in selections.items():  # nor were stored selections
        assert _state(out, name)[name] == state
    keys = [name.rsplit("-", 1)[-1].removesuffix(".json") for name in after]
    assert len(set(keys)) == CELLS  # every cell exists once

    assert run_bench(load_bench_config(path=config), out, progress=False).computed == 0  # a finished grid redoes nothing
    assert _state(out, "cells/*.json") == after

    rows = list(csv.DictReader(write_report(out)["cells_csv"].open()))
    assert sorted(r["key"] for r in rows) == sorted(set(keys))  # reported once each
