"""The one progress-bar factory: training epochs, selection steps and bench grids all draw their
bars here, so every long phase looks the same (description, bar, count, elapsed, ETA)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)


CONSOLE = Console(stderr=True)
"""The one console of logs and progress bars (standard error; results go to standard output): with
one console, rich prints log lines above a live bar instead of redrawing it."""


def make_progress(unit: str = "", *extra: ProgressColumn | str, enabled: bool = True, style: str = "bold") -> Progress:
    """A bar ``description ▕███▏ done/total unit [extra columns] elapsed ETA remaining``.

    ``extra`` columns (rich columns or format strings over ``task.fields``) follow the count, e.g.
    the training loop's images/s and loss.
    """
    columns: list[ProgressColumn | str] = [TextColumn(f"[{style}]{{task.description}}"), BarColumn(), MofNCompleteColumn()]
    if unit:
        columns.append(TextColumn(unit))
    columns += [TextColumn(column) if isinstance(column, str) else column for column in extra]
    columns += [TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*columns, console=CONSOLE, disable=not enabled, transient=False)


@contextmanager
def step_progress(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """``with step_progress("k-center", budget, enabled=ctx.progress) as advance: ... advance(1)``."""
    with make_progress(enabled=enabled) as bar:
        task = bar.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            bar.update(task, advance=steps)

        yield advance
