"""Helpers shared by the data-source tests: damaged files, code-running pickles, errors that name the culprit."""

from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from pathlib import Path

import pytest

from rlselector.errors import InputError


def truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


@contextmanager
def raises_naming(text: str, match: str = ""):
    """An InputError whose message names ``text`` (usually the culprit file) and matches ``match``."""
    with pytest.raises(InputError, match=match) as info:
        yield info
    assert text in str(info.value), f"{text!r} not named in: {info.value}"


class RunsCode:
    """A pickled object whose loading would create ``marker``: proof that a reader ran the file's code."""

    def __init__(self, marker: Path, via: str) -> None:
        self.marker, self.via = marker, via

    def __reduce__(self):
        if self.via == "open":
            return (open, (str(self.marker), "w"))
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


# Each way of running code, and the global the refusal names.
EACH_CODE_PAYLOAD = pytest.mark.parametrize(("via", "refused"), [("open", "io.open"), ("system", "system")])
