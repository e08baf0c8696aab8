"""Tables over seeds: mean ± std, the best entry per column, tests against random, paired
differences with their confidence interval, and ranks with their bootstrap range.

One function builds every mean ± std table of the report (accuracy per method × ratio,
cross-architecture method × model, transfer, Dunn index): rows and columns are keys of the records,
the value is one field. Conventions, stated in the report:

- mean and *sample* standard deviation (ddof = 1; 0 for a single seed) over the seeds of a cell;
- the best mean of each column is marked (ties all marked; reference rows do not compete);
- significance against the ``random`` row of the same column, marked at p < ``ALPHA``. Records are
  matched into pairs by a key (the seed: within a column the ratio and the evaluation model are
  fixed, and every method's subset of a (ratio, seed) trains with the same evaluation seed, so the
  same initial weights and augmentation stream). With at least two matched pairs the test is the
  paired two-sided t-test over them (``scipy.stats.ttest_rel``); without, Welch's two-sided t-test
  over all values (``scipy.stats.ttest_ind(equal_var=False)``), which needs two values on each side,
  otherwise the p-value is absent (shown as "n/a").

:func:`difference_table` gives each method's mean paired difference from random with a 95 % CI
(Student t over the pairs); :func:`rank_table` the rank of each method's mean with its 95 % range
over a paired bootstrap of seeds (whole seeds are resampled, every method keeps its values of the
drawn seeds, so what all methods share in a seed cancels out of the ranks).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
BASELINE = "random"
TEST_NAME = "Welch's two-sided t-test over seeds vs random (scipy.stats.ttest_ind, equal_var=False)"


def percent(ratio: Any) -> str:
    """A selection ratio as a column label: ``0.3`` → ``30 %``; None (every ratio) → ``all``."""
    return "all" if ratio is None else f"{100 * ratio:g} %" if isinstance(ratio, (int, float)) else str(ratio)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None with fewer than two values on a side.

    Two constant samples with equal means give p = 1; with different means p = 0 (scipy returns
    NaN for zero variance).
    """
    # rounding drops float noise (e.g. 10.000000000000002 vs 10.0) that scipy reads as variance
    a, b = np.round(np.asarray(a, dtype=np.float64), 9), np.round(np.asarray(b, dtype=np.float64), 9)
    if len(a) < 2 or len(b) < 2:
        return None
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    with warnings.catch_warnings():  # a constant side (e.g. identical accuracies) makes scipy warn needlessly
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


@dataclass
class Entry:
    values: list[float]
    mean: float
    std: float
    p: float | None = None
    """p-value against the baseline row (None: baseline itself, reference, or too few seeds)."""
    best: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def significant(self) -> bool:
        return self.p is not None and self.p < ALPHA


@dataclass
class Table:
    title: str
    row_name: str
    columns: list[Any]
    rows: list[Any]
    entries: dict[tuple[Any, Any], Entry]
    references: list[Any] = field(default_factory=list)
    """Rows shown first that do not compete for best (e.g. full data)."""
    fmt: str = "{:.2f}"
    column_label: Callable[[Any], str] = str
    row_label: Callable[[Any], str] = str
    note: str = ""
    context: str = ""
    """The section the table stands in (prefixes its title in CSV rows)."""

    def entry(self, row: Any, column: Any) -> Entry | None:
        return self.entries.get((row, column))

    def csv_rows(self) -> Iterable[dict[str, Any]]:
        for row in [*self.references, *self.rows]:
            for c in self.columns:
                e = self.entry(row, c)
                if e is None:
                    continue
                yield {
                    "table": f"{self.context}: {self.title}" if self.context else self.title, self.row_name: self.row_label(row), "column": self.column_label(c), "n": e.n,
                    "mean": round(e.mean, 6), "std": round(e.std, 6), "best": e.best,
                    "p_vs_random": "" if e.p is None else f"{e.p:.6g}", "significant": e.significant,
                }


def build_table(
    records: Sequence[dict[str, Any]],
    *,
    title: str,
    row: Callable[[dict], Any],
    column: Callable[[dict], Any],
    value: Callable[[dict], float | None],
    row_name: str = "method",
    reference: Callable[[dict], bool] = lambda r: False,
    higher_is_better: bool = True,
    row_order: Sequence[Any] = (),
    test: bool = True,
    mark_best: bool = True,
    **options: Any,
) -> Table:
    """Group ``records`` by (row, column), summarise ``value`` over them, mark best and significance.

    Records for which ``reference`` is true form reference rows (shown first, never best, never
    tested); a record whose column is None is shown in every column (e.g. full data in each ratio's).
    With ``test=False`` no p-values are computed, with ``mark_best=False`` no entry is marked (timings).
    """
    groups: dict[tuple[Any, Any], list[float]] = {}
    ref_rows: list[Any] = []
    for record in records:
        v = value(record)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        key = (row(record), column(record))
        groups.setdefault(key, []).append(float(v))
        if reference(record) and key[0] not in ref_rows:
            ref_rows.append(key[0])
    columns = sorted({c for _, c in groups if c is not None}, key=_sort_key) or [None]
    for r, _ in [k for k in groups if k[1] is None and columns != [None]]:  # column None = every column
        for other in columns:
            groups.setdefault((r, other), groups[(r, None)])
        del groups[(r, None)]
    present = {r for r, _ in groups if r not in ref_rows}
    order = [r for r in row_order if r in present]
    rows = order + sorted(present - set(order), key=_sort_key)
    entries = {key: Entry(values, *mean_std(values)) for key, values in groups.items()}
    for c in columns:
        base = groups.get((BASELINE, c))
        competitors = [entries[(r, c)] for r in rows if (r, c) in entries]
        if competitors and mark_best:
            best = (max if higher_is_better else min)(e.mean for e in competitors)
            for e in competitors:
                e.best = e.mean == best
        if base is not None and test:
            for r in rows:
                if r != BASELINE and (r, c) in entries:
                    entries[(r, c)].p = welch_p(groups[(r, c)], base)
    return Table(title=title, row_name=row_name, columns=columns, rows=rows, entries=entries, references=ref_rows, **options)


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))
