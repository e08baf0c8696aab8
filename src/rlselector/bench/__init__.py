"""Benchmark harness: grids of methods × ratios × seeds × evaluation models, resumable results,
the HTML/Markdown/CSV report and the paper's analyses (Dunn index, t-SNE).

Modules, top down: ``report`` (writes the report) → ``sections`` (its content) → ``document``,
``render``, ``figures``, ``stats``; ``execute`` (runs a grid) → ``plan`` (its cells), ``store`` (the
results directory), ``cost``, ``data``, ``analysis``; ``grid`` (the schema, validated) → ``grids``
(the built-in grids).

>>> from rlselector.bench import load_bench_config, run_bench     # doctest: +SKIP
>>> run_bench(load_bench_config(grid="cpu-quick"), "runs/bench")  # doctest: +SKIP
"""

from .execute import BenchSummary, run_bench
from .grid import BenchConfig, config_from_dict, load_bench_config, restrict_methods, restrict_seeds
from .grids import GRIDS

__all__ = ["GRIDS", "BenchConfig", "BenchSummary", "config_from_dict", "load_bench_config", "restrict_methods", "restrict_seeds", "run_bench"]
