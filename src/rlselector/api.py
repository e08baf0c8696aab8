"""The entry point above the methods: ``select()`` validates, runs a method, writes the selection format.

It stands above ``methods/`` (importing that package registers every built-in method), so the
registry lookups :func:`get_method` and :func:`list_methods` live here too; ``selection/`` below
holds only the contract, the registry dict and the shared plumbing.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .version import __version__
from . import methods  # noqa: F401  (each module registers itself on import)
from .data.base import Dataset
from .errors import InputError
from .io import output_lock
from .selection.format import FORMAT_VERSION, MANIFEST, SCORE_DIRECTION, Selection, write_selection
from .selection.method import METHODS, MethodResult, SelectionContext, SelectionMethod, params_record
from .selection.policies import top_k
from .train.device import Runtime
from .train.distributed import DistributedContext

log = logging.getLogger(__name__)

WORK = "work"
"""Sub-directory of ``--out`` where a method keeps checkpoints while it runs."""
WIPED_OUT_SHARE = 0.25
"""A class keeping less than this share of the requested ratio is reported as nearly wiped out."""


def get_method(name: str) -> type[SelectionMethod]:
    """The registered method called ``name``; an unknown name is refused with the list of known ones."""
    if name not in METHODS:
        raise InputError(f"unknown selection method {name!r}; known methods: {', '.join(sorted(METHODS))}")
    return METHODS[name]


def list_methods() -> list[type[SelectionMethod]]:
    """Every registered method, by name."""
    return [METHODS[name] for name in sorted(METHODS)]


def check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (0.0 < float(ratio) <= 1.0) or np.isnan(ratio):
        raise InputError(f"--ratio is the share of training samples to KEEP and must lie in (0, 1]; got {ratio!r}")
    return float(ratio)


def check_features(features: Any, n: int, *, where: str = "--features") -> np.ndarray:
    """Per-sample features: one finite float row per training sample."""
    if isinstance(features, (str, Path)):
        path = Path(features)
        if not path.exists():
            raise InputError(f"{path}: features file not found; give a .npy of shape (N, d)")
        try:
            features = np.load(path, mmap_mode="r")
        except ValueError as err:
            raise InputError(f"{path}: not a .npy array ({err}); save features with numpy.save") from err
        where = str(path)
    features = np.asarray(features)
    if features.ndim != 2:
        raise InputError(f"{where}: features must be 2-D (N, d), got shape {features.shape}")
    if features.shape[0] != n:
        raise InputError(
            f"{where}: {features.shape[0]} feature rows but the training set has {n} samples; "
            f"features must hold one row per training sample in dataset order (same --limit and seed)"
        )
    if not np.issubdtype(features.dtype, np.floating):
        raise InputError(f"{where}: features must be float, got dtype {features.dtype}; cast them with .astype('float32')")
    bad = ~np.isfinite(features).all(axis=1)
    if bad.any():
        raise InputError(f"{where}: {int(bad.sum())} rows hold NaN or inf (first: row {int(np.flatnonzero(bad)[0])}); clean or drop them")
    return np.ascontiguousarray(features, dtype=np.float32)


def select(
    dataset: Dataset,
    method: str = "rl-selector",
    ratio: float = 0.5,
    seed: int = 0,
    *,
    class_balanced: bool = False,
    features: np.ndarray | str | Path | None = None,
    dynamics: Any = None,
    out: str | Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    proxy_config: Any = None,
    model: Any = None,
    progress: bool = True,
    device: str = "auto",
    amp: str = "off",
    channels_last: bool = False,
    compile: bool = False,
    workers: int = 0,
    **params: Any,
) -> Selection:
    """Select ``ratio`` of ``dataset``'s training set with ``method``; write it to ``out`` if given.

    Returns the same :class:`Selection` object :func:`load_selection` returns. Every input is
    checked before heavy work; nothing is written unless the selection completes.

    Where the networks a method trains (proxy, target, self-supervised encoder) run, as in
    :func:`rlselector.train.train`, recorded in the manifest's ``runtime``:

    - ``device``: ``auto`` (a CUDA GPU where present, else the CPU), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    - ``amp``: mixed precision, ``off``, ``bf16`` or ``fp16``; part of the cache keys (the device is not).
    - ``channels_last``: NHWC memory format, faster convolutions on GPUs.
    - ``compile``: torch.compile the forward pass (skipped with a warning where it cannot compile).
    - ``workers``: DataLoader processes reading the batches; 0 = this process.

    >>> from rlselector import load_dataset, select
    >>> sel = select(load_dataset("digits"), method="random", ratio=0.5, seed=0, progress=False)
    >>> sel.manifest["n_kept"], len(sel.scores)
    (718, 1437)
    """
    ratio = check_ratio(ratio)
    runtime = {"device": device, "amp": amp, "channels_last": channels_last, "compile": compile, "workers": workers}
    placed = Runtime.of(**runtime)  # refused here, not at the first training after minutes of other work
    DistributedContext.from_env(placed.device)  # under torchrun: join the group before any work (every rank runs this)
    method_cls = get_method(method)
    instance = method_cls(method_cls.make_params(**params))
    features = None if features is None else check_features(features, len(dataset))
    if features is not None and not method_cls.reads_features():
        raise InputError(
            f"--features: method {method!r} does not read features (its inputs: {', '.join(method_cls.inputs)}); "
            f"drop --features, or choose a method that embeds (see 'rlselector methods')"
        )
    if model is not None and (not callable(model) or isinstance(model, str)):
        raise InputError(f"model= takes a factory build(*, in_channels, num_classes, image_size) -> nn.Module, got {type(model).__name__}; "
                         f"for a registered model use the recipe (recipe=...)")
    if model is not None and "target-training" not in method_cls.inputs:
        raise InputError(
            f"model=: method {method!r} trains no target network (its inputs: {', '.join(method_cls.inputs) or 'none'}); its proxy "
            f"is the recipe's registered model. To score with your own network, train it in your loop with a SelectionLoop "
            f"(see README, 'Your own training loop'), or drop model="
        )
    if resume and overwrite:
        raise InputError("--resume continues the run in --out and --overwrite replaces it: pass one of them, not both")
    out_dir = check_out(out, overwrite=overwrite or resume)
    ctx = SelectionContext(
        dataset=dataset,
        ratio=ratio,
        seed=int(seed),
        class_balanced=class_balanced,
        features=features,
        dynamics=dynamics,
        workdir=(out_dir / WORK) if out_dir is not None else None,
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        resume=resume,
        progress=progress,
        proxy_config=proxy_config,
        model=model,
        runtime=runtime,
    )
    instance.validate(ctx)
    return complete(instance, ctx, lambda: instance.run(ctx), out=out_dir, command=f"rlselector select --method {method}")


def check_out(out: str | Path | None, *, overwrite: bool) -> Path | None:
    """The output directory, refused if it holds a selection already (unless ``overwrite``)."""
    out_dir = Path(out) if out is not None else None
    if out_dir is not None and (out_dir / MANIFEST).exists() and not overwrite:
        raise InputError(f"{out_dir / MANIFEST}: a selection already exists there; choose another --out or pass --overwrite")
    return out_dir


def complete(
    instance: SelectionMethod, ctx: SelectionContext, produce: Callable[[], MethodResult], *, out: Path | None, command: str,
    started: float | None = None,
) -> Selection:
    """The one ending of every selection, :func:`select`'s and :meth:`rlselector.SelectionLoop.finish`'s:
    ``produce`` the method's result (its run, or its decision after a loop), turn it into a
    :class:`Selection` and, with ``out``, write it there under the directory's lock (``ctx.workdir``
    is ``out/work``, removed when the method kept nothing in it). ``started``: when the selection
    began (its timings count from there; None = now)."""
    started = time.perf_counter() if started is None else started
    ranks = DistributedContext.current()
    if out is None or not ranks.is_main:  # under torchrun every rank selects the same; rank 0 alone writes
        selection = _finalise(instance, ctx, produce(), time.perf_counter() - started)
        ranks.barrier()  # return once rank 0's files are there
        return selection
    with output_lock(out, command, WORK):
        selection = _finalise(instance, ctx, produce(), time.perf_counter() - started)
        write_selection(out, selection)
        if not any((out / WORK).iterdir()):  # the method kept no checkpoints: leave only the selection
            (out / WORK).rmdir()
    log.info("selection written to %s", out)
    ranks.barrier()
    return selection


def _finalise(instance, ctx: SelectionContext, result: MethodResult, total_seconds: float) -> Selection:
    dataset, n = ctx.dataset, len(ctx.dataset)
    scores = np.asarray(result.scores, dtype=np.float64)
    if scores.shape != (n,) or not np.isfinite(scores).all():
        raise RuntimeError(f"method {instance.name!r} returned scores of shape {scores.shape} (finite: {np.isfinite(scores).all()}); expected ({n},)")
    indices = top_k(scores, ctx.budget) if result.indices is None else np.unique(np.asarray(result.indices, dtype=np.int64))
    labels = ctx.labels
    kept_per_class = np.bincount(labels[indices], minlength=dataset.num_classes)
    totals = dataset.class_counts
    warnings = [
        f"class {dataset.classes[k]!r} keeps {kept_per_class[k]} of {totals[k]} samples"
        for k in range(dataset.num_classes)
        if kept_per_class[k] < WIPED_OUT_SHARE * ctx.ratio * totals[k]
    ]
    for warning in warnings:
        log.warning("nearly wiped out: %s", warning)
    manifest = {
        "format_version": FORMAT_VERSION,
        "method": instance.name,
        "params": params_record(instance.params),
        "reference": instance.reference,
        "ratio_requested": ctx.ratio,
        "ratio_achieved": len(indices) / n,
        "n": n,
        "n_kept": int(len(indices)),
        "seed": ctx.seed,
        "class_balanced": ctx.class_balanced,
        "features": "user" if ctx.features is not None else None,
        "dataset": {
            "name": dataset.name,
            "fingerprint": dataset.fingerprint,
            "source": dataset.source,
            "num_classes": dataset.num_classes,
        },
        "per_class": {
            dataset.classes[k]: {"kept": int(kept_per_class[k]), "total": int(totals[k])}
            for k in range(dataset.num_classes)
        },
        "warnings": warnings,
        "score_direction": SCORE_DIRECTION,
        "timings": ctx.cost.timings(total_seconds),
        "package_version": __version__,
        # a selection is reproducible for the same seed on the same machine at the same thread count
        "reproducibility": {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "numpy_version": np.__version__},
        **({"runtime": dict(ctx.runtime)} if ctx.runtime else {}),  # a SelectionLoop trains in the user's loop: nothing to say
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    clash = sorted(set(result.info) & set(manifest))
    if clash:
        raise RuntimeError(f"method {instance.name!r} reports info {clash} that would overwrite manifest fields")
    manifest.update(result.info)
    return Selection(
        indices=indices, scores=scores, manifest=manifest, raw_scores=result.raw_scores,
        sample_ids=dataset.source_ids[indices] if dataset.source_ids is not None else None,
        parent_indices=dataset.parent_indices[indices] if dataset.parent_indices is not None else None,
    )
