"""How long a grid has left: cells done and left, and the mean seconds per cell kind so far.

Kinds differ by an order of magnitude (a full-data cell trains on everything; an eval cell that
computes its selection first, ``eval+METHOD``, costs that method's selection on top, and a method
that trains ten proxies costs a hundred times one that draws at random), so one mean over all cells
would mislead as the mix of pending kinds changes. A kind not timed yet is estimated at the mean of
the timed kinds that share its base (``eval+el2n`` by every ``eval+…``), else of every timed cell.
"""

from __future__ import annotations

from collections import Counter, defaultdict


class Eta:
    """Fed each finished cell's kind and seconds; :meth:`line` says where the grid stands."""

    def __init__(self, pending_kinds: list[str], done: int) -> None:
        self.left = Counter(pending_kinds)
        self.done = done
        self.seconds: dict[str, list[float]] = defaultdict(list)

    def finished(self, kind: str, seconds: float, *, timed: bool = True) -> None:
        """One cell of ``kind`` finished after ``seconds``; a failed cell (``timed=False``) counts as
        done but its time does not enter the means."""
        self.left[kind] -= 1
        self.done += 1
        if timed:
            self.seconds[kind].append(seconds)

    def mean(self, kind: str) -> float | None:
        """Mean seconds of the ``kind`` cells timed so far; else of the timed kinds with its base (the part
        before ``+``); else of every timed cell; None before any."""
        base = kind.split("+")[0]
        times = self.seconds.get(kind) \
            or [t for other, values in self.seconds.items() if "+" in kind and other.startswith(base + "+") for t in values] \
            or [t for values in self.seconds.values() for t in values]
        return sum(times) / len(times) if times else None

    def seconds_left(self) -> float | None:
        """Estimated seconds to finish the pending cells; None before any cell is timed."""
        if not any(self.seconds.values()):
            return None
        return sum(n * self.mean(kind) for kind, n in self.left.items() if n > 0)

    def line(self) -> str:
        """``12 cells done, 28 left; s/cell: eval 35, full 60 → about 16 min left``."""
        left = sum(n for n in self.left.values() if n > 0)
        text = f"{self.done} cells done, {left} left"
        remaining = self.seconds_left()
        if remaining is None:
            return text
        means = ", ".join(f"{kind} {sum(t) / len(t):.0f}" for kind, t in sorted(self.seconds.items()) if t)
        return f"{text}; s/cell: {means} → about {duration(remaining)} left"


def duration(seconds: float) -> str:
    """``42 s``, ``16 min``, ``3 h 05 min``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
