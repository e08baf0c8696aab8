"""Selection plumbing below the methods: the format, the method contract and registry, score
policies, training dynamics and the proxy stage. The entry point ``select()`` stands above the
methods, in :mod:`rlselector.api`."""

from .format import Selection, load_selection, write_selection
from .method import METHODS, MethodResult, ScoreMethod, SelectionContext, SelectionMethod, param, register_method

__all__ = [
    "METHODS", "MethodResult", "ScoreMethod", "Selection", "SelectionContext", "SelectionMethod",
    "load_selection", "param", "register_method", "write_selection",
]
