"""Selection: the format, the method contract and registry, score policies, the proxy stage."""

from .api import select
from .format import Selection, load_selection, write_selection
from .method import METHODS, MethodResult, ScoreMethod, SelectionContext, SelectionMethod, get_method, list_methods, param, register_method

__all__ = [
    "METHODS", "MethodResult", "ScoreMethod", "Selection", "SelectionContext", "SelectionMethod",
    "get_method", "list_methods", "load_selection", "param", "register_method", "select", "write_selection",
]
