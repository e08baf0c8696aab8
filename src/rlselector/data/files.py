"""Finding the user's files: a required path, an extracted archive directory, folder entries, text lines.

Every helper refuses what it cannot use with an :class:`InputError` naming the path and what was expected.
"""

from __future__ import annotations

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


def path_and_size(spec: str | None, source: str, expected: str, *, directory: bool) -> tuple[Path, int | None]:
    """Split a source's ``/path?size=N`` into the user's path and the square size to resize images to."""
    path, separator, query = (spec or "").rpartition("?")
    if not separator:
        return require_path(spec, expected, directory=directory), None
    key, _, value = query.partition("=")
    if key != "size" or not value.isdigit() or int(value) < 1:
        raise InputError(f"{source}:{spec}: unknown option {query!r}; the only option is ?size=N (a positive integer)")
    return require_path(path, expected, directory=directory), int(value)


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
