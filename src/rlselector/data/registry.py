"""Data sources register by name; ``load_dataset("fashion-mnist")`` or ``load_dataset("cifar10:/path")``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import InputError
from .base import Dataset


@dataclass(frozen=True)
class Source:
    name: str
    summary: str
    load: Callable[[str | None], Dataset]
    """``load(root)``: root is the path after ``name:`` (or ``--data-root``), None for the default."""
    needs_path: bool
    """True for user sources, which have no default location."""
    installed: Callable[[], str | None]
    """None when the data is available; else a message saying what to install."""


SOURCES: dict[str, Source] = {}


def register_source(name: str, summary: str, *, needs_path: bool = False, installed: Callable[[], str | None] | None = None):
    def wrap(load: Callable[[str | None], Dataset]) -> Callable[[str | None], Dataset]:
        if name in SOURCES:
            raise RuntimeError(f"data source {name!r} registered twice")
        SOURCES[name] = Source(
            name=name,
            summary=summary,
            load=load,
            needs_path=needs_path,
            installed=installed or (lambda: None if not needs_path else f"user data: --data {name}:/path"),
        )
        return load

    return wrap


def parse_spec(spec: str, root: str | None = None) -> tuple[Source, str | None]:
    name, _, path = spec.partition(":")
    path = path or root
    if name not in SOURCES:
        raise InputError(
            f"unknown data source {name!r}; known sources: {', '.join(sorted(SOURCES))} "
            f"(user data: cifar10:/path, cifar100:/path, folder:/path, imagenet:/path?size=N, webdataset:/path/shards-{{000..009}}.tar?size=N, "
            f"csv:/path/list.csv, npz:/path/file.npz)"
        )
    source = SOURCES[name]
    if source.needs_path and not path:
        raise InputError(f"data source {name!r} needs a path: --data {name}:/path/to/data")
    return source, path


def load_dataset(spec: str, *, root: str | None = None, limit: int | None = None, seed: int = 0) -> Dataset:
    """Load a dataset by spec (``fashion-mnist``, ``mnist``, ``digits``, ``cifar10:/path``, ...).

    ``limit`` takes a seeded, class-stratified subset of the training set.
    """
    source, path = parse_spec(spec, root)
    dataset = source.load(path)
    if limit is not None:
        if limit <= 0:
            raise InputError(f"--limit must be a positive number of samples, got {limit}")
        dataset = dataset.limit(limit, seed=seed)
    return dataset
