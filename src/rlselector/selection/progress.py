"""A progress bar for long selection loops (greedy steps, chunks, epochs), in the training loop's style."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


@contextmanager
def step_progress(description: str, total: int, *, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """``with step_progress("k-center", budget, enabled=ctx.progress) as advance: ... advance(1)``."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(steps: int = 1) -> None:
            bar.update(task, advance=steps)

        yield advance
