"""Benchmark harness: grids of methods × ratios × seeds × evaluation models, resumable results,
the HTML/Markdown/CSV report and the paper's analyses (Dunn index, t-SNE).

>>> from rlselector.bench import load_bench_config, run_bench     # doctest: +SKIP
>>> run_bench(load_bench_config(preset="cpu-quick"), "runs/bench")  # doctest: +SKIP
"""

from .config import PRESETS, BenchConfig, config_from_dict, load_bench_config
from .runner import BenchSummary, run_bench

__all__ = ["PRESETS", "BenchConfig", "BenchSummary", "config_from_dict", "load_bench_config", "run_bench"]
