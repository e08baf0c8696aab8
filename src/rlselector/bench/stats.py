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
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

ALPHA = 0.05
LEVEL = 0.95
"""Confidence level of every interval of the report."""
BASELINE = "random"
PAIRED_TEST = "paired"
WELCH_TEST = "Welch"
TEST_NAME = ("the paired two-sided t-test over seeds vs random (scipy.stats.ttest_rel; pairs share ratio, seed and evaluation "
             "model, hence the evaluation seed), or Welch's two-sided t-test (scipy.stats.ttest_ind, equal_var=False) where "
             "fewer than two seeds pair up")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def percent(ratio: Any) -> str:
    """A selection ratio as a column label: ``0.3`` → ``30 %``; None (every ratio) → ``all``."""
    return "all" if ratio is None else f"{100 * ratio:g} %" if isinstance(ratio, (int, float)) else str(ratio)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _denoised(values: Iterable[float]) -> np.ndarray:
    """Rounded to 9 decimals: drops float noise (10.000000000000002 vs 10.0) that scipy reads as variance."""
    return np.round(np.asarray(list(values), dtype=np.float64), 9)


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test; None with fewer than two values on a side.

    Two constant samples with equal means give p = 1; with different means p = 0 (scipy returns
    NaN for zero variance).
    """
    a, b = _denoised(a), _denoised(b)
    if len(a) < 2 or len(b) < 2:
        return None
    if a.std() == 0 and b.std() == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    with warnings.catch_warnings():  # a constant side (e.g. identical accuracies) makes scipy warn needlessly
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


@dataclass(frozen=True)
class Paired:
    """``a − b`` over matched pairs: mean, sample std, the 95 % CI of the mean, t and its two-sided p.

    With one pair there is no interval, t or p (None); with constant differences the interval is the
    point, t is infinite (p = 0) or, when every difference is 0, t = 0 (p = 1).
    """

    differences: tuple[float, ...]
    mean: float
    std: float
    low: float | None
    high: float | None
    t: float | None
    p: float | None

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else (self.high - self.low) / 2


def paired_difference(a: Mapping[Any, float], b: Mapping[Any, float], *, level: float = LEVEL) -> Paired | None:
    """``a − b`` over the keys both hold (None when they share none): mean d̄, sample std s,
    t = d̄ / (s / √n) with n − 1 degrees of freedom, CI d̄ ± t_{(1+level)/2, n−1} · s / √n."""
    keys = [k for k in a if k in b]
    if not keys:
        return None
    d = _denoised(a[k] - b[k] for k in keys)
    n, mean = len(d), float(d.mean())
    if n < 2:
        return Paired(tuple(d), mean, 0.0, None, None, None, None)
    std = float(d.std(ddof=1))
    if std == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
        return Paired(tuple(d), mean, 0.0, mean, mean, t, 1.0 if mean == 0 else 0.0)
    se = std / math.sqrt(n)
    t = mean / se
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * se
    return Paired(tuple(d), mean, std, mean - half, mean + half, t, float(2 * stats.t.sf(abs(t), n - 1)))


def competition_ranks(means: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """1 + the number of rows strictly better, along axis 0 (ties share the better rank): (R, ...) → (R, ...)."""
    means = np.asarray(means, dtype=np.float64)
    better = means[None] > means[:, None] if higher_is_better else means[None] < means[:, None]
    return 1 + better.sum(axis=1)


def bootstrap_rank_range(values: Mapping[Any, Mapping[Any, float]], *, higher_is_better: bool = True, level: float = LEVEL,
                         resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> dict[Any, tuple[int, int | None, int | None]]:
    """Row → (rank of its mean, low, high): the central ``level`` range of its rank over ``resamples``
    paired bootstrap draws of the pair keys (seeds) that every row holds; (rank, None, None) with one key.

    A draw takes as many keys as there are, with replacement (``numpy.random.default_rng(seed)``),
    and ranks the rows' means over the drawn keys; ties share the better rank.
    """
    rows = list(values)
    keys = [k for k in next(iter(values.values()), {}) if all(k in values[r] for r in rows)] if rows else []
    if not keys:
        return {}
    matrix = np.array([[values[r][k] for k in keys] for r in rows], dtype=np.float64)  # (rows, keys)
    point = competition_ranks(matrix.mean(axis=1), higher_is_better=higher_is_better)
    if len(keys) < 2:
        return {r: (int(point[i]), None, None) for i, r in enumerate(rows)}
    draws = np.random.default_rng(seed).integers(0, len(keys), size=(resamples, len(keys)))
    ranks = competition_ranks(matrix[:, draws].mean(axis=2), higher_is_better=higher_is_better)  # (rows, resamples)
    tail = 100 * (1 - level) / 2
    low = np.percentile(ranks, tail, axis=1, method="lower")
    high = np.percentile(ranks, 100 - tail, axis=1, method="higher")
    return {r: (int(point[i]), int(low[i]), int(high[i])) for i, r in enumerate(rows)}


@dataclass
class Entry:
    values: list[float]
    mean: float
    std: float
    p: float | None = None
    """p-value against the baseline row (None: baseline itself, reference, or too few seeds)."""
    best: bool = False
    low: float | None = None
    """An interval around ``mean`` (a CI, a rank range); when set it is shown instead of the std."""
    high: float | None = None
    test: str | None = None
    """The test behind ``p``: PAIRED_TEST or WELCH_TEST."""

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
                    "mean": round(e.mean, 6), "std": round(e.std, 6), "low": _rounded(e.low), "high": _rounded(e.high), "best": e.best,
                    "p_vs_random": "" if e.p is None else f"{e.p:.6g}", "test": e.test or "", "significant": e.significant,
                }


def _rounded(value: float | None) -> Any:
    return "" if value is None else round(value, 6)


Groups = dict[tuple[Any, Any], list[tuple[Any, float]]]
"""(row, column) → the (pair key, value) of each record in it."""


def _groups(records: Sequence[dict[str, Any]], row: Callable, column: Callable, value: Callable, pair: Callable,
            reference: Callable[[dict], bool]) -> tuple[Groups, list[Any], list[Any]]:
    """Records grouped by (row, column), NaN and None values dropped; a record whose column is None is
    put in every column. Returns the groups, the columns and the reference rows."""
    groups: Groups = {}
    ref_rows: list[Any] = []
    for record in records:
        v = value(record)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        key = (row(record), column(record))
        groups.setdefault(key, []).append((pair(record), float(v)))
        if reference(record) and key[0] not in ref_rows:
            ref_rows.append(key[0])
    columns = sorted({c for _, c in groups if c is not None}, key=_sort_key) or [None]
    for r, _ in [k for k in groups if k[1] is None and columns != [None]]:  # column None = every column
        for other in columns:
            groups.setdefault((r, other), groups[(r, None)])
        del groups[(r, None)]
    return groups, columns, ref_rows


def _paired(group: list[tuple[Any, float]]) -> dict[Any, float] | None:
    """The group as pair key → value; None when a key occurs twice (the group cannot be paired)."""
    by_key = dict(group)
    return by_key if len(by_key) == len(group) else None


def _rows(groups: Groups, ref_rows: list[Any], row_order: Sequence[Any]) -> list[Any]:
    present = {r for r, _ in groups if r not in ref_rows}
    order = [r for r in row_order if r in present]
    return order + sorted(present - set(order), key=_sort_key)


def _test(group: list[tuple[Any, float]], base: list[tuple[Any, float]]) -> tuple[float | None, str | None]:
    """(p, test) of ``group`` vs ``base``: paired over their matched pairs when there are two or more, else Welch."""
    a, b = _paired(group), _paired(base)
    if a is not None and b is not None:
        paired = paired_difference(a, b)
        if paired is not None and paired.n >= 2:
            return paired.p, PAIRED_TEST
    p = welch_p([v for _, v in group], [v for _, v in base])
    return p, (None if p is None else WELCH_TEST)


def build_table(
    records: Sequence[dict[str, Any]],
    *,
    title: str,
    row: Callable[[dict], Any],
    column: Callable[[dict], Any],
    value: Callable[[dict], float | None],
    pair: Callable[[dict], Any] = lambda r: r["seed"],
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
    ``pair`` matches the records of two rows of a column (see the module's conventions). With
    ``test=False`` no p-values are computed, with ``mark_best=False`` no entry is marked (timings).
    """
    groups, columns, ref_rows = _groups(records, row, column, value, pair, reference)
    rows = _rows(groups, ref_rows, row_order)
    entries = {key: Entry([v for _, v in group], *mean_std([v for _, v in group])) for key, group in groups.items()}
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
                    entries[(r, c)].p, entries[(r, c)].test = _test(groups[(r, c)], base)
    return Table(title=title, row_name=row_name, columns=columns, rows=rows, entries=entries, references=ref_rows, **options)


def difference_table(records: Sequence[dict[str, Any]], *, title: str, row: Callable[[dict], Any], column: Callable[[dict], Any],
                     value: Callable[[dict], float | None], pair: Callable[[dict], Any] = lambda r: r["seed"],
                     row_name: str = "method", row_order: Sequence[Any] = (), **options: Any) -> Table:
    """Each row's mean paired difference from the baseline row of its column (matched by ``pair``),
    its 95 % CI and the paired t-test's p; rows sharing no pair with the baseline (or holding a pair
    key twice) are left out."""
    groups, columns, _ = _groups(records, row, column, value, pair, lambda r: False)
    entries = {}
    for (r, c), group in groups.items():
        base = groups.get((BASELINE, c))
        if r == BASELINE or base is None or _paired(group) is None or _paired(base) is None:
            continue
        paired = paired_difference(_paired(group), _paired(base))
        if paired is not None:
            entries[(r, c)] = Entry(list(paired.differences), paired.mean, paired.std, paired.p, low=paired.low, high=paired.high,
                                    test=PAIRED_TEST if paired.p is not None else None)
    rows = [r for r in _rows(groups, [], row_order) if any((r, c) in entries for c in columns)]
    return Table(title=title, row_name=row_name, columns=columns, rows=rows, entries=entries, fmt="{:+.2f}", **options)


def rank_table(records: Sequence[dict[str, Any]], *, title: str, row: Callable[[dict], Any], column: Callable[[dict], Any],
               value: Callable[[dict], float | None], pair: Callable[[dict], Any] = lambda r: r["seed"],
               reference: Callable[[dict], bool] = lambda r: False, higher_is_better: bool = True,
               row_name: str = "method", row_order: Sequence[Any] = (), **options: Any) -> Table:
    """Each row's rank by mean in its column over the pair keys every competing row holds, and the
    rank's 95 % range over a paired bootstrap of those keys (:func:`bootstrap_rank_range`)."""
    groups, columns, ref_rows = _groups(records, row, column, value, pair, reference)
    rows = _rows(groups, ref_rows, row_order)
    entries = {}
    for c in columns:
        by_row = {r: _paired(groups[(r, c)]) for r in rows if (r, c) in groups}
        if not by_row or any(v is None for v in by_row.values()):
            continue
        for r, (rank, low, high) in bootstrap_rank_range(by_row, higher_is_better=higher_is_better).items():
            shared = [v for k, v in by_row[r].items() if all(k in other for other in by_row.values())]
            entries[(r, c)] = Entry(shared, float(rank), 0.0, low=None if low is None else float(low), high=None if high is None else float(high))
    rows = [r for r in rows if any((r, c) in entries for c in columns)]
    return Table(title=title, row_name=row_name, columns=columns, rows=rows, entries=entries, fmt="{:.0f}", **options)


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))
