"""Declared method parameters: a default, one help line, and what a value must be.

A method's ``Params`` dataclass declares each field with :func:`param`; the field's annotation is its
type (``int``, ``float``, ``bool``, ``str``, ``int | None``, ``list[int]``, ``tuple[int, int]``,
``dict``, ``Literal[...]``), and ``param`` adds the choices or bounds (scikit-learn's declarative
constraints). :func:`build_params` turns untyped values (``-p`` text read as YAML, grid files,
Python) into that dataclass, checking every value once: coerced to the declared type (``"3e-4"`` →
3e-4, ``"5"`` → 5, ``"true"`` → True, an int where a float is declared; a bool is never a number),
then held against its choices and bounds. A value that does not fit is refused with an
:class:`~rlselector.errors.InputError` naming the parameter, what it must be and an example, so a
method's ``validate`` keeps only the checks that involve several parameters or the data.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import numpy as np

from ..errors import InputError

TRUE, FALSE, NONE = ("true", "yes", "on"), ("false", "no", "off"), ("none", "null", "~")
"""Text read as True, False and None (YAML's words, in any case)."""

NoneType = type(None)


@dataclass(frozen=True)
class Rule:
    """What a parameter's value must be besides its annotated type (see :func:`param`)."""

    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    fields: type | None = None
    example: Any = None


class _Mismatch(Exception):
    """A value that does not fit its declaration (turned into an InputError by :func:`_checked`)."""


def param(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    fields: type | None = None,
    example: Any = None,
) -> Any:
    """A method parameter: its default, the one line ``rlselector methods`` shows for it, and what a
    value must be besides its annotated type: one of ``choices``; within the bounds ``ge`` (≥), ``gt``
    (>), ``le`` (≤), ``lt`` (<), which for a list hold for each item; for a mapping, the fields of the
    dataclass ``fields`` with their annotated types. ``example`` is shown in errors instead of the
    default (for defaults that show nothing, like None)."""
    rule = Rule(None if choices is None else tuple(choices), ge, gt, le, lt, fields, example)
    metadata = {"help": help, "rule": rule}
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def build_params(params_cls: type, values: Mapping[str, Any], owner: str) -> Any:
    """``params_cls`` (a ``Params`` dataclass) from untyped ``values``, each coerced and checked
    against its declaration; ``owner`` (the method's name) starts every error."""
    return params_cls(**_checked_record(values, params_cls, owner, ()))


def _checked_record(values: Mapping[str, Any], record_cls: type, owner: str, path: tuple[str, ...]) -> dict[str, Any]:
    """The fields of the dataclass ``record_cls`` named in the mapping ``values``, each checked;
    ``path`` leads from the method's parameters to this record (empty at the top)."""
    declared = {f.name: f for f in dataclasses.fields(record_cls)}
    where = f"{owner}: parameter {_label(path)}" if path else owner
    unknown = sorted(str(name) for name in values if name not in declared)
    if unknown:
        close = sorted({match for name in unknown for match in difflib.get_close_matches(name, declared, n=1)})
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        kind = "parameter(s)" if not path else f"{record_cls.__name__} field(s)"
        raise InputError(f"{where} has no {kind} {unknown}{hint}; known: {', '.join(declared) or '(none)'}")
    hints = _hints(record_cls)
    return {name: _checked(value, hints[name], declared[name], owner, (*path, name)) for name, value in values.items()}


def _checked(value: Any, hint: Any, declared: dataclasses.Field, owner: str, path: tuple[str, ...]) -> Any:
    """``value`` as the field ``declared`` (annotated ``hint``) wants it, or an InputError."""
    rule = declared.metadata.get("rule", Rule())
    if rule.fields is not None and isinstance(value, Mapping):
        return _checked_record(value, rule.fields, owner, path)
    try:
        return _convert(value, hint, rule)
    except _Mismatch:
        example = rule.example if rule.example is not None else _example(hint, rule, _default(declared))
        raise InputError(
            f"{owner}: parameter {_label(path)} must be {_describe(hint, rule)}, got {value!r}; e.g. {_cli(path, example)}"
        ) from None


def _describe(hint: Any, rule: Rule, plural: bool = False) -> str:
    """What a value of type ``hint`` under ``rule`` must be, in words ("an integer ≥ 1 (or none)")."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        text = " or ".join(_describe(arm, rule, plural) for arm in args if arm is not NoneType)
        return f"{text} (or none)" if NoneType in args else text
    if origin is Literal or (rule.choices is not None and origin not in (list, tuple)):
        return "one of " + ", ".join(map(repr, args if origin is Literal else rule.choices))
    if origin in (list, tuple) or hint in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)} {_describe(args[0], rule, plural=True)}"
        return f"a list of {_describe(args[0], rule, plural=True)}" if args else "a list"
    if origin is dict or hint is dict:
        return f"a mapping of {rule.fields.__name__} fields" if rule.fields else "a mapping"
    nouns = {int: ("an integer", "integers"), float: ("a number", "numbers"), bool: ("true or false", "true/false values"),
             str: ("a string", "strings")}
    noun = nouns[hint][plural] if hint in nouns else f"a {getattr(hint, '__name__', hint)}"
    return noun + _bounds(rule)


def _convert(value: Any, hint: Any, rule: Rule) -> Any:
    """``value`` coerced to ``hint`` and inside ``rule``; :class:`_Mismatch` if it cannot be."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if NoneType in args and (value is None or isinstance(value, str) and value.strip().lower() in NONE):
            return None
        for arm in args:
            if arm is not NoneType:
                try:
                    return _convert(value, arm, rule)
                except _Mismatch:
                    pass
        raise _Mismatch
    if origin is Literal:
        if value not in args:
            raise _Mismatch
        return value
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise _Mismatch
            return tuple(_convert(item, arm, rule) for item, arm in zip(value, args))
        items = [_convert(item, args[0] if args else Any, rule) for item in value]
        return tuple(items) if tuple in (origin, hint) else items
    if origin is dict or hint is dict:
        if not isinstance(value, Mapping):
            raise _Mismatch
        return dict(value)
    scalar = {bool: _boolean, int: _integer, float: _number, str: _text}.get(hint)
    if scalar is None:
        if not isinstance(value, hint):
            raise _Mismatch
    else:
        value = scalar(value)
    if (rule.choices is not None and value not in rule.choices) or not _inside(value, rule):
        raise _Mismatch
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise _Mismatch


def _integer(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise _Mismatch
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            value = _number(value)  # "1e4", "5.0"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    raise _Mismatch


def _number(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise _Mismatch
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise _Mismatch from None
    if isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value):
        return float(value)
    raise _Mismatch


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise _Mismatch


def _inside(value: Any, rule: Rule) -> bool:
    """Whether a number lies within the rule's bounds (anything else always does)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    return not (
        rule.ge is not None and value < rule.ge or rule.gt is not None and value <= rule.gt
        or rule.le is not None and value > rule.le or rule.lt is not None and value >= rule.lt
    )


def _bounds(rule: Rule) -> str:
    """The bounds in words: " ≥ 1", " > 0", " in [0, 1)", or nothing."""
    low = ("[", rule.ge) if rule.ge is not None else ("(", rule.gt) if rule.gt is not None else None
    high = ("]", rule.le) if rule.le is not None else (")", rule.lt) if rule.lt is not None else None
    if low and high:
        return f" in {low[0]}{low[1]:g}, {high[1]:g}{high[0]}"
    if low:
        return f" {'≥' if low[0] == '[' else '>'} {low[1]:g}"
    if high:
        return f" {'≤' if high[0] == ']' else '<'} {high[1]:g}"
    return ""


def _example(hint: Any, rule: Rule, default: Any) -> Any:
    """A value the declaration accepts: the default unless it shows nothing, else a usual value."""
    if default is not None and default != [] and default != {}:
        return default
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _example(next(arm for arm in args if arm is not NoneType), rule, None)
    if rule.choices is not None:
        return rule.choices[0]
    if origin is Literal:
        return args[0]
    if origin in (list, tuple):
        return [_example(arm, rule, None) for arm in args if arm is not Ellipsis]
    usual = {int: (5, 1, 0), float: (0.5, 0.1, 1.0, 0.0), bool: (True,), str: ("...",)}.get(hint, ({},))
    bounds = [bound for bound in (rule.ge, rule.le) if bound is not None]
    return next(value for value in (*usual, *bounds) if _inside(value, rule))


def _default(declared: dataclasses.Field) -> Any:
    if declared.default is not dataclasses.MISSING:
        return declared.default
    if declared.default_factory is not dataclasses.MISSING:
        return declared.default_factory()
    return None


def _label(path: tuple[str, ...]) -> str:
    """``'agent' field 'learning_rate'`` for the path ("agent", "learning_rate")."""
    return " field ".join(map(repr, path))


def _cli(path: tuple[str, ...], value: Any) -> str:
    """``-p`` text that sets ``value`` at ``path`` (a nested field inside its mapping), quoted if needed."""
    for name in reversed(path[1:]):
        value = {name: value}
    text = f"{path[0]}={_yaml(value)}"
    return f'-p "{text}"' if any(c in text for c in " {}[]") else f"-p {text}"


def _yaml(value: Any) -> str:
    """``value`` as YAML flow text (what ``-p`` reads)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {_yaml(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_yaml, value)) + "]"
    return str(value)


@functools.cache
def _hints(record_cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields (string annotations evaluated once)."""
    return get_type_hints(record_cls)
