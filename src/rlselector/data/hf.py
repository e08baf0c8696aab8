"""A Hugging Face ``datasets.Dataset`` as a :class:`~.base.Dataset`: :func:`from_hf`.

Needs the optional extra ``rlselector[hf]``. Rows are read once into uint8 tensors, as
:func:`~.torch_data.from_torch` does and for its reasons (a pixel fingerprint, fast random batches).
Nothing is downloaded here: the dataset is whatever the caller built or loaded.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .base import Dataset, RawSplit, make_raw_dataset
from .images import ImageReader, any_pixels

HF_FIX = (
    "from_hf takes a datasets.Dataset with an image column (a datasets.Image feature: "
    "ds = ds.cast_column('image', datasets.Image())) and a label column (ClassLabel, integers or class names)."
)
_BATCH_ROWS = 256


def _datasets() -> Any:
    try:
        import datasets
    except ImportError as err:
        raise InputError(
            "from_hf needs the Hugging Face 'datasets' package, which is not installed: "
            "pip install 'rlselector[hf]'"
        ) from err
    return datasets


def _check_split(datasets: Any, split: Any, what: str, columns: list[str]) -> None:
    if isinstance(split, datasets.DatasetDict):
        raise InputError(
            f"from_hf: {what} is a DatasetDict with splits {list(split)}; pass one split, e.g. "
            f"from_hf(d['train'], test=d['test'])"
        )
    if not isinstance(split, datasets.Dataset):
        streaming = " (load it without streaming=True)" if isinstance(split, datasets.IterableDataset) else ""
        raise InputError(f"from_hf: {what} is a {type(split).__name__}, not a datasets.Dataset{streaming}. {HF_FIX}")
    if len(split) == 0:
        raise InputError(f"from_hf: {what} holds no rows. {HF_FIX}")
    for column in columns:
        if column not in split.column_names:
            raise InputError(
                f"from_hf: {what} has no column {column!r}; its columns are {split.column_names}. Name the "
                f"right one (image_column=, label_column=, id_column=)"
            )


def _class_names(datasets: Any, split: Any, label_column: str) -> tuple[str, ...] | None:
    feature = split.features[label_column]
    return tuple(feature.names) if isinstance(feature, datasets.ClassLabel) else None


def _read(split: Any, what: str, columns: tuple[str, str], reader: ImageReader, progress: bool) -> RawSplit:
    """The rows of one split; ``columns`` are the image and the label column."""
    image_column, label_column = columns

    def items():
        rows = split.with_format(None).select_columns([image_column])
        for start in range(0, len(rows), _BATCH_ROWS):
            for offset, image in enumerate(rows[start : start + _BATCH_ROWS][image_column]):
                where = f"from_hf: {what} row {start + offset}, column {image_column!r}"
                yield where, any_pixels(image, where, HF_FIX)

    images = reader.stack(len(split), items(), progress=f"reading {what}" if progress else None)
    labels = list(split.with_format(None)[label_column])
    return RawSplit(
        images, labels, lambda i: f"from_hf: {what} row {i}, column {label_column!r}", f"from_hf: {what} ({len(split)} rows)"
    )


def _ids(split: Any, id_column: str) -> list[int] | list[str]:
    """The values of the ID column, which must be unique integers or unique strings."""
    ids = list(split.with_format(None)[id_column])
    fix = "Pick another id_column, or leave it out to use the row numbers"
    kinds = {type(value) for value in ids}
    if not (kinds <= {int} or kinds <= {str}):
        raise InputError(
            f"from_hf: ds column {id_column!r} holds {split.features[id_column]}; sample IDs must be all "
            f"integers or all strings. {fix}"
        )
    first: dict[Any, int] = {}
    for row, value in enumerate(ids):
        if value in first:
            raise InputError(f"from_hf: ds row {row}, column {id_column!r}: ID {value!r} is row {first[value]}'s too; IDs must be unique. {fix}")
        first[value] = row
    return ids


def from_hf(
    ds: Any,
    image_column: str = "image",
    label_column: str = "label",
    test: Any = None,
    *,
    id_column: str | None = None,
    name: str | None = None,
    hflip: bool = True,
    progress: bool = True,
) -> Dataset:
    """A Hugging Face ``datasets.Dataset`` with image and label columns as a :class:`Dataset`.

    Images (decoded PIL images, all of one size) become RGB, or one channel when every image is.
    Class names come from the label column's ``ClassLabel`` feature when it has one; else labels
    are integer class ids ('0'..'K-1') or class names (sorted). ``test`` is an optional test split
    with the same columns (and the same ClassLabel names). Sample IDs are the row numbers, or the
    values of ``id_column`` (unique integers or strings). ``name`` defaults to ``hf:<dataset name>``;
    ``hflip=False`` where a mirrored image is another class.
    """
    datasets = _datasets()
    columns = (image_column, label_column)
    _check_split(datasets, ds, "ds", [*columns] + ([id_column] if id_column is not None else []))
    classes = _class_names(datasets, ds, label_column)
    if test is not None:
        _check_split(datasets, test, "test", [*columns])
        if _class_names(datasets, test, label_column) != classes:
            raise InputError(
                f"from_hf: the {label_column!r} classes of test ({_class_names(datasets, test, label_column)}) "
                f"differ from those of ds ({classes}); both splits need one ClassLabel feature"
            )
    reader = ImageReader(size_fix="Resize them to one size (ds.map with PIL's Image.resize).")
    title = ds.info.dataset_name or "dataset"
    return make_raw_dataset(
        name or f"hf:{title}",
        _read(ds, "ds", columns, reader, progress),
        _read(test, "test", columns, reader, progress) if test is not None else None,
        classes,
        source=f"datasets:{title}",
        fix=HF_FIX,
        hflip=hflip,
        sample_ids=_ids(ds, id_column) if id_column is not None else None,
    )
