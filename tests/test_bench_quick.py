"""The cpu-quick grid end to end, and the report rendered by headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from rlselector.bench import GRIDS, config_from_dict, load_bench_config, run_bench
from rlselector.bench.report import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.slow
def test_cpu_quick_grid(tmp_path):
    """Every method once on Fashion-MNIST (2,000 samples): every cell succeeds and the report shows it.
    (How long it takes is a benchmark, not a test: the printed seconds.)"""
    from rlselector.api import list_methods
    from rlselector.selection import METHODS

    list_methods()
    missing = [m for m in GRIDS["cpu-quick"]["methods"] if m not in METHODS]
    if missing:  # the grid refuses to run without them (test_grids_load_or_name_what_is_missing)
        pytest.skip(f"cpu-quick lists methods not registered yet: {missing}")
    started = time.perf_counter()
    summary = run_bench(load_bench_config(grid="cpu-quick"), tmp_path, progress=False)
    seconds = time.perf_counter() - started
    paths = write_report(tmp_path)
    print(f"cpu-quick: {summary.total} cells in {seconds:.0f} s")
    assert not summary.failed
    page = paths["html"].read_text()
    for method in GRIDS["cpu-quick"]["methods"]:
        assert f"<th>{method}</th>" in page


def _render(html: Path, png: Path, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
         f"--screenshot={png}", "--window-size=1400,4000", html.resolve().as_uri()],
        capture_output=True, timeout=120,
    )


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless Chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    config = config_from_dict({
        "name": "chromium", "data": "digits", "limit": 300, "methods": ["random", "herding"], "ratios": [0.3, 0.6], "seeds": [0, 1],
        "models": [{"name": "resnet18", "width": 4}], "recipe": {"base": "cpu-tiny", "epochs": 1, "batch_size": 32},
        "proxy": {"width": 4, "epochs": 2, "batch_size": 64, "record_epochs": [1, 2]}, "analysis": False,
    })
    run_bench(config, tmp_path / "out", progress=False)
    html = write_report(tmp_path / "out")["html"]
    png = tmp_path / "report.png"
    result = _render(html, png, tmp_path / "profile")
    assert png.exists(), result.stderr.decode()[-2000:]
    from PIL import Image

    image = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert image.shape == (4000, 1400)
    assert png.stat().st_size > 50_000  # text, tables and plots, not a blank page
    assert (image < 128).mean() > 0.01 and image.std() > 20
