"""A CSV list of image files and their labels (``csv:/path/list.csv``).

The header names the columns ``path`` and ``label``, and optionally ``split`` (``train`` or
``test``; ``train`` when absent). Paths are relative to the CSV's folder; labels are class names.
Every refusal names the CSV, the line and the field.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import Dataset, RawSplit, make_raw_dataset
from .files import path_and_options
from .images import ImageReader
from .registry import register_source

CSV_COLUMNS = ("path", "label", "split")
CSV_SPLITS = ("train", "test")
CSV_LAYOUT = "a CSV file with the header 'path,label' (optionally ',split'), one image per line"
CSV_FIX = "Each line is an image path relative to the CSV's folder, its class name and optionally train or test."


@dataclass(frozen=True)
class _Row:
    """One line of the list."""

    line: str
    """``<csv>, line <n>``, for messages."""
    path: str
    """The image path as the CSV writes it."""
    file: Path
    label: str

    def field(self, name: str) -> str:
        return f"{self.line}, field {name!r}" + (f" ({self.path})" if name == "path" else "")


def _read_rows(csv_path: Path) -> dict[str, list[_Row]]:
    """The rows of each split, checked field by field."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            lines = [(number, row) for number, row in enumerate(csv.reader(handle), start=1)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"{csv_path}: cannot read ({err}). Save it as a UTF-8 CSV. {CSV_FIX}") from err
    lines = [(number, row) for number, row in lines if any(field.strip() for field in row)]
    if not lines:
        raise InputError(f"{csv_path}: empty; expected {CSV_LAYOUT}")
    header_line, header = lines[0]
    header = [name.strip() for name in header]
    for name in header:
        if name not in CSV_COLUMNS or header.count(name) > 1:
            problem = "is named twice" if name in CSV_COLUMNS else "is unknown"
            raise InputError(
                f"{csv_path}, line {header_line}: column {name!r} {problem}; the columns are "
                f"{', '.join(CSV_COLUMNS)} (split optional). {CSV_FIX}"
            )
    for name in CSV_COLUMNS[:2]:
        if name not in header:
            raise InputError(f"{csv_path}, line {header_line}: no {name!r} column; the header must name path and label. {CSV_FIX}")
    rows: dict[str, list[_Row]] = {split: [] for split in CSV_SPLITS}
    first_line: dict[str, int] = {}
    for number, fields in lines[1:]:
        where = f"{csv_path}, line {number}"
        if len(fields) != len(header):
            raise InputError(f"{where}: {len(fields)} fields, but the header names {len(header)} ({', '.join(header)}). {CSV_FIX}")
        values = {name: value.strip() for name, value in zip(header, fields)}
        for name, value in values.items():
            if not value:
                raise InputError(f"{where}, field {name!r}: empty. {CSV_FIX}")
        split = values.get("split", "train")
        if split not in CSV_SPLITS:
            raise InputError(f"{where}, field 'split': {split!r} is neither train nor test")
        file = csv_path.parent / values["path"]
        if not file.is_file():
            raise InputError(f"{where}, field 'path': {file} does not exist. {CSV_FIX}")
        if values["path"] in first_line:
            raise InputError(f"{where}, field 'path': {values['path']} is listed already on line {first_line[values['path']]}; list each image once")
        first_line[values["path"]] = number
        rows[split].append(_Row(where, values["path"], file, values["label"]))
    if not rows["train"]:
        raise InputError(f"{csv_path}: lists no training images. {CSV_FIX}")
    return rows


@register_source(
    "csv",
    "a CSV list 'path,label[,split]' of image files relative to its folder; csv:/path/list.csv?size=N resizes",
    needs_path=True,
)
def load_csv(root: str | None = None) -> Dataset:
    """The images a CSV lists, labelled by class name; classes are the sorted training class names.

    Images decode as for an image folder (RGB, or one channel when every image is greyscale) and
    must share one size, unless ``?size=N`` resizes them to NxN. Sample IDs are the training paths
    as the CSV writes them.
    """
    csv_path, options = path_and_options(root, "csv", CSV_LAYOUT, directory=False)
    rows = _read_rows(csv_path)
    reader = ImageReader(
        size_fix=f"Resize them, or pass csv:{csv_path}?size=N to resize every image to NxN.", resize_to=options.size
    )

    def split(name: str) -> RawSplit | None:
        lines = rows[name]
        if not lines:
            return None
        images = reader.read([row.file for row in lines], [row.field("path") for row in lines])
        where = f"{csv_path} ({'training' if name == 'train' else 'test'} lines)"
        return RawSplit(images, [row.label for row in lines], lambda i: lines[i].field("label"), where)

    return make_raw_dataset(
        f"csv:{csv_path.name}",
        split("train"),
        split("test"),
        None,
        source=str(csv_path),
        fix=CSV_FIX,
        sample_ids=[row.path for row in rows["train"]],
    )
