"""What a selection cost: the method's own time (with any cached stage it reused) plus its proxy training.

The proxy run is shared by every score-based method of a (data, seed); a method that found it
cached is charged the run's stored training time, so each method's cost is what it would take alone.
"""

from __future__ import annotations

from typing import Any


def selection_cost(timings: dict[str, Any], shared_proxy_s: float) -> dict[str, Any]:
    """Cost in seconds of a selection from its manifest's ``timings``; ``shared_proxy_s`` is the
    training time of the cached proxy run it reused (0 when it trained its own or none)."""
    own, proxy = float(timings.get("selection_s", 0.0)), float(timings.get("proxy_s", 0.0))
    own += float(timings.get("reused_s", 0.0))  # a stage read from a cache (target, encoder) costs what training it did
    return {"selection_s": own, "proxy_s": proxy, "proxy_cached": bool(timings.get("proxy_cached", False)),
            "proxy_shared_s": shared_proxy_s, "cost_s": own + proxy + shared_proxy_s}
