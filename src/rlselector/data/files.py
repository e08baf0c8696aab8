"""Finding the user's files: a required path, an extracted archive directory, folder entries, text lines.

Every helper refuses what it cannot use with an :class:`InputError` naming the path and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError


def require_path(root: str | None, expected: str, *, directory: bool) -> Path:
    """The user's path; a missing one (or a file where a directory belongs) says what was expected."""
    if not root:
        raise InputError(f"no path given; expected {expected}")
    path = Path(root).expanduser()
    if path.is_dir() if directory else path.is_file():
        return path
    problem = "no such file or directory" if not path.exists() else ("not a directory" if directory else "not a file")
    raise InputError(f"{path}: {problem}; expected {expected}")


@dataclass(frozen=True)
class SourceOptions:
    """What follows a source's path after ``?`` (``folder:/data?size=64&lazy&cache=/scratch``)."""

    size: int | None = None
    """``size=N``: every image decoded to NxN."""
    lazy: bool = False
    """``lazy``: decode images on demand (in DataLoader workers) instead of all of them up front."""
    cache: Path | None = None
    """``cache=DIR``: decode once into a memory-mapped uint8 file in DIR, reused by every later load."""
    test: str | None = None
    """``test=PATH``: where the test split lies (sources whose path names the training data only)."""


OPTION_FORMS = {"size": "size=N (a positive integer)", "lazy": "lazy", "cache": "cache=DIR", "test": "test=PATH"}


def split_options(spec: str | None, source: str, allowed: tuple[str, ...] = ("size",)) -> tuple[str, SourceOptions]:
    """A source's ``path?key=value&...`` as the path and its :class:`SourceOptions`; an option that is
    not in ``allowed`` or has a bad value is refused with the options this source takes."""
    path, separator, query = (spec or "").rpartition("?")
    if not separator:
        return spec or "", SourceOptions()
    found: dict[str, object] = {}
    for item in query.split("&"):
        key, equals, value = item.partition("=")
        good = key in allowed and key not in found and (
            (key == "size" and value.isdigit() and int(value) >= 1) or (key == "lazy" and not equals)
            or (key in ("cache", "test") and bool(value))
        )
        if not good:
            forms = " and ".join(f"?{OPTION_FORMS[name]}" for name in allowed)
            raise InputError(f"{source}:{spec}: unknown option {item!r}; the options here are {forms}, joined by '&'")
        found[key] = int(value) if key == "size" else True if key == "lazy" else Path(value).expanduser() if key == "cache" else value
    return path, SourceOptions(**found)  # type: ignore[arg-type]


def path_and_options(spec: str | None, source: str, expected: str, *, directory: bool,
                     allowed: tuple[str, ...] = ("size",)) -> tuple[Path, SourceOptions]:
    """:func:`split_options`, the path required to exist (a directory or a file)."""
    path, options = split_options(spec, source, allowed)
    return require_path(path, expected, directory=directory), options


def extracted_dir(root: str | None, folder_name: str, marker: str, expected: str) -> Path:
    """The extracted archive directory: ``root`` itself, or ``root/folder_name`` when root is its parent."""
    base = require_path(root, expected, directory=True)
    for candidate in (base, base / folder_name):
        if (candidate / marker).is_file():
            return candidate
    raise InputError(f"{base}: no {marker} here nor in {base / folder_name}; expected {expected}")


def text_lines(path: Path, fix: str) -> list[str]:
    """The non-blank lines of a text file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot read ({err}). {fix}") from err
    return [line.strip() for line in text.splitlines() if line.strip()]


def visible_entries(directory: Path) -> list[Path]:
    """Sorted entries of a directory; hidden ones ('.DS_Store', '.ipynb_checkpoints') are not data."""
    return sorted(entry for entry in directory.iterdir() if not entry.name.startswith("."))
