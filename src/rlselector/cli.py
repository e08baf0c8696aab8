"""The ``rlselector`` command line. Nothing else imports this module."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
import yaml
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from .bench.grids import GRIDS
from .errors import InputError
from .progress import CONSOLE
from .recipes import RECIPES
from .version import __version__

app = typer.Typer(
    help="rlselector: shrink a training set to the samples that matter (RL-Selector and baselines).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # plain help: flags read as flags (rich help shows them as '<bool>')
)
console = Console()
"""Results go to standard output; logs and progress bars share :data:`rlselector.progress.CONSOLE`."""

DataOpt = Annotated[str, typer.Option("--data", help="Dataset: fashion-mnist, mnist, digits, or user data cifar10:/path, cifar100:/path, folder:/path, tiny-imagenet:/path, npz:/file.npz, csv:/list.csv (columns path,label).")]
DataRootOpt = Annotated[Optional[str], typer.Option("--data-root", help="Directory of a built-in source's files, instead of its default location.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of everything random in this run; the same seed gives the same result on the same machine.")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", help="Use a seeded, class-stratified subset of N training samples (quick runs).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue an interrupted run in --out from its last checkpoint.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="Where to train: auto (a CUDA GPU where present, else the CPU), cpu, cuda, cuda:N or mps; under torchrun each rank takes cuda:LOCAL_RANK.")]
AmpOpt = Annotated[str, typer.Option("--amp", help="Mixed precision: off, bf16 or fp16 (autocast; weights, optimiser and loss stay float32; fp16 adds loss scaling).")]
ChannelsLastOpt = Annotated[bool, typer.Option("--channels-last", help="NHWC memory format: faster convolutions on GPUs.")]
CompileOpt = Annotated[bool, typer.Option("--compile", help="torch.compile the forward pass (skipped with a warning where it cannot compile).")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="DataLoader processes reading the batches (decoding images of lazy sources such as imagenet: or folder:...&lazy); 0 = this process. The result is the same for any number.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads torch may use. Default: the cores not busy at start (one per core minus the 1-minute load average, at least 1): on a shared machine more threads than free cores make torch crawl.")]
RECIPE_HELP = "Named training recipe: " + "; ".join(f"{r.name} ({r.summary})" for r in RECIPES.values())


_threads_before_command: int | None = None


def _set_threads(threads: int | None) -> int:
    """Fix torch's thread count for this run (torch sizes its pool once) and return it."""
    import os

    import torch

    threads = threads if threads is not None else _threads_before_command
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) - round(os.getloadavg()[0]))
    torch.set_num_threads(threads)
    return threads


def _version(show: bool) -> None:
    if show:
        typer.echo(f"rlselector {__version__}")
        raise typer.Exit()


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    threads: ThreadsOpt = None,
) -> None:
    global _threads_before_command
    _threads_before_command = threads  # 'rlselector --threads 1 select ...' keeps working beside 'select --threads 1'
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=CONSOLE, show_path=False)],
        force=True,
    )


def _seed_list(text: str) -> list[int]:
    """``--seeds 0,1,2`` as integers; a bad entry is an InputError that names it."""
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise InputError(f"--seeds {text!r}: give comma-separated integers, e.g. --seeds 0,1") from None


def _fail(err: Exception) -> None:
    CONSOLE.print(f"[bold red]error:[/] {err}")
    raise typer.Exit(2)


def _model(spec: str):
    """A registered model name as it is, or the factory a ``FILE.py:FUNCTION`` names."""
    from .models import load_factory

    return load_factory(spec) if ".py:" in spec else spec


def _load(data: str, data_root: str | None, limit: int | None, seed: int):
    from .data import load_dataset

    return load_dataset(data, root=data_root, limit=limit, seed=seed)


@app.command()
def datasets() -> None:
    """List every data source, whether it is installed here, and its sizes."""
    from .data import SOURCES

    wide = console.width >= 140  # the one-line summaries only fit a wide terminal
    table = Table("source", "installed", "train", "test", "classes", "image", *(["about"] if wide else []))
    for source in SOURCES.values():
        missing = source.installed()
        if missing is None and not source.needs_path:
            try:
                ds = source.load(None)
            except InputError as err:
                table.add_row(source.name, f"[red]broken[/]: {err}", "", "", "", "", *([source.summary] if wide else []))
                continue
            size = "x".join(str(v) for v in (ds.in_channels, *ds.image_shape))
            test = len(ds.test) if ds.test is not None else 0
            table.add_row(source.name, "[green]yes[/]", f"{len(ds):,}", f"{test:,}", str(ds.num_classes), size, *([source.summary] if wide else []))
        else:
            table.add_row(source.name, f"[yellow]{missing}[/]", "", "", "", "", *([source.summary] if wide else []))
    console.print(table)


@app.command()
def methods(params: Annotated[bool, typer.Option("--params", help="Also list each method's parameters with their defaults and help.")] = False) -> None:
    """List the selection methods, one line each, with the inputs they need."""
    import dataclasses

    from .api import list_methods

    table = Table("method", "inputs", "what it does")
    for method in list_methods():
        table.add_row(method.name, ", ".join(method.inputs) or "-", method.summary)
        if params:
            for f in dataclasses.fields(method.Params):
                default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
                table.add_row("", f"  {f.name}={default!r}", f.metadata.get("help", ""))
    console.print(table)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` pairs, each VALUE read as YAML (the method's declarations type it); a KEY that
    is an argument of ``select()`` itself is refused with the option that sets it."""
    import inspect

    from .api import select as run_select

    arguments = [name for name, arg in inspect.signature(run_select).parameters.items() if arg.kind is not arg.VAR_KEYWORD]
    options = {"dataset": "--data", "progress": "--quiet", "proxy_config": "a bench grid's proxy: section"}  # the rest: --<name>
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--param expects KEY=VALUE, got {pair!r}")
        key = key.strip().replace("-", "_")
        if key in arguments:
            option = options.get(key, f"--{key.replace('_', '-')}")
            raise InputError(f"-p {pair}: {key!r} is not a method parameter but an option of select; use {option}")
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise InputError(f"-p {pair}: the value is not valid YAML ({getattr(err, 'problem', err)}); e.g. -p \"agent={{learning_rate: 3e-4}}\"") from None
    return params


@app.command()
def select(
    data: DataOpt = "fashion-mnist",
    method: Annotated[str, typer.Option("--method", help="Selection method (see 'rlselector methods').")] = "rl-selector",
    ratio: Annotated[float, typer.Option("--ratio", help="Share of the training set to KEEP, in (0, 1].")] = 0.5,
    seed: SeedOpt = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory to write selection.json and selection.npz into.")] = Path("runs/selection"),
    features: Annotated[Optional[Path], typer.Option("--features", help="Your own per-sample features (.npy, N x d float) instead of a proxy model's.")] = None,
    dynamics: Annotated[Optional[Path], typer.Option("--dynamics", help="Your own training dynamics (.npz: loss E x N, correct E x N) instead of a proxy run.")] = None,
    class_balanced: Annotated[bool, typer.Option("--class-balanced", help="Keep each class in proportion to its size.")] = False,
    recipe: Annotated[Optional[str], typer.Option("--recipe", "--preset", help="Target-network recipe of methods that train one (rl-selector, cover-static); --preset is the old name. " + RECIPE_HELP)] = None,
    model: Annotated[Optional[str], typer.Option("--model", help="Your own network for the methods that train one (target or proxy): FILE.py:FUNCTION, a factory build(*, in_channels, num_classes, image_size) -> nn.Module.")] = None,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", help="rl-selector: fine-tune from a finished run's directory to this ratio (transferable variant).")] = None,
    param: Annotated[list[str], typer.Option("--param", "-p", help="Method parameter KEY=VALUE, VALUE read as YAML and checked against the parameter's type (repeatable), e.g. -p epochs=5 -p \"agent={learning_rate: 3e-4}\"; see 'rlselector methods --params'.")] = [],
    limit: LimitOpt = None,
    data_root: DataRootOpt = None,
    cache_dir: Annotated[Path, typer.Option("--cache-dir", help="Where proxy runs are cached and reused across methods.")] = Path("runs/cache"),
    resume: ResumeOpt = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a selection already in --out.")] = False,
    export: Annotated[Optional[str], typer.Option("--export", help="Also write the kept samples as csv: --out/selection.csv (index, sample_id, parent_index, score).")] = None,
    device: DeviceOpt = "auto",
    amp: AmpOpt = "off",
    channels_last: ChannelsLastOpt = False,
    compile_model: CompileOpt = False,
    workers: WorkersOpt = 0,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Select a subset of the training set and write it in the selection format."""
    import time

    from .api import select as run_select
    from .selection.dynamics import load_dynamics
    from .train.device import Runtime
    from .train.distributed import DistributedContext

    _set_threads(threads)
    started = time.perf_counter()
    try:
        if export not in (None, "csv"):
            raise InputError(f"--export: the one export format is csv, got {export!r}")
        params = _parse_params(param)
        if recipe is not None:
            params["recipe"] = recipe
        if init_from is not None:
            params["init_from"] = str(init_from)
        runtime = {"device": device, "amp": amp, "channels_last": channels_last, "compile": compile_model, "workers": workers}
        Runtime.of(**runtime)  # refused before the data loads
        dataset = _load(data, data_root, limit, seed)
        selection = run_select(
            dataset, method, ratio, seed,
            class_balanced=class_balanced,
            features=features,
            dynamics=load_dynamics(dynamics, len(dataset)) if dynamics else None,
            out=out, overwrite=overwrite, resume=resume, cache_dir=cache_dir, progress=not quiet,
            model=_model(model) if model is not None else None,
            **runtime,
            **params,
        )
        if not DistributedContext.current().is_main:  # under torchrun rank 0 writes and reports
            return
        if export == "csv":
            selection.to_csv(out / "selection.csv")
    except InputError as err:
        _fail(err)
    m = selection.manifest
    proxy = m["timings"]["proxy_s"]
    console.print(
        f"[bold]{m['method']}[/] kept {m['n_kept']:,} of {m['n']:,} ({100 * m['ratio_achieved']:.2f} %) "
        f"in {time.perf_counter() - started:.1f} s" + (f" (proxy training {proxy:.1f} s of it)" if proxy else "") + f" → {out}"
    )
    for warning in m.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")


def _parse_milestones(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(m) for m in text.split(",") if m.strip())
    except ValueError:
        raise InputError(f"--milestones expects comma-separated epochs, e.g. --milestones 30,60; got {text!r}") from None


@app.command()
def train(
    data: DataOpt = "fashion-mnist",
    model: Annotated[str, typer.Option("--model", help="Model to train: resnet18, resnet50, vgg16, densenet121, vit_small, or your own as FILE.py:FUNCTION (a factory build(*, in_channels, num_classes, image_size) -> nn.Module).")] = "resnet18",
    width: Annotated[Optional[int], typer.Option("--width", help="Width multiplier (ResNet base channels; 64 = standard, 16 for CPU).")] = 16,
    epochs: Annotated[int, typer.Option("--epochs", help="Training epochs.")] = 3,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per SGD step.")] = 128,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate of SGD.")] = 0.1,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="SGD weight decay.")] = 5e-4,
    schedule: Annotated[str, typer.Option("--schedule", help="cosine, multistep or constant.")] = "cosine",
    milestones: Annotated[str, typer.Option("--milestones", help="Comma-separated epochs for the multistep schedule, e.g. 30,60.")] = "",
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off random crop and flip.")] = False,
    recalibrate_bn: Annotated[bool, typer.Option("--recalibrate-bn", help="After the last epoch, recompute the batch-norm statistics over the training set without augmentation (one forward pass; steadies a short training's test accuracy, BENCHMARKS.md).")] = False,
    seed: SeedOpt = 0,
    selection: Annotated[Optional[Path], typer.Option("--selection", help="Train only on this selection's kept samples (a directory from 'rlselector select').")] = None,
    limit: LimitOpt = None,
    data_root: DataRootOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Run directory: checkpoint.pt every epoch, log.jsonl, result.json.")] = Path("runs/train"),
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = "off",
    channels_last: ChannelsLastOpt = False,
    compile_model: CompileOpt = False,
    workers: WorkersOpt = 0,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Train a model from scratch on the full training set or a selection; print the final test accuracy."""
    from .io import output_lock
    from .selection import load_selection
    from .train import TrainConfig, train_model
    from .train.device import Runtime

    _set_threads(threads)
    try:
        config = TrainConfig(
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, schedule=schedule,  # type: ignore[arg-type]
            milestones=_parse_milestones(milestones), augment=not no_augment, seed=seed, recalibrate_bn=recalibrate_bn,
        )
        config.validate()
        runtime = {"device": device, "amp": amp, "channels_last": channels_last, "compile": compile_model, "workers": workers}
        Runtime.of(**runtime)  # refused before the data loads
        dataset = _load(data, data_root, limit, seed)
        if selection is not None:
            dataset = load_selection(selection).subset(dataset)
        with output_lock(out, "rlselector train"):
            _, result = train_model(dataset, model=_model(model), width=width, config=config, out_dir=out, resume=resume,
                                    progress=not quiet, **runtime)
    except InputError as err:
        _fail(err)
    if result.top1 is not None:
        console.print(f"final-epoch test accuracy: top-1 {result.top1:.2f} %  top-5 {result.top5:.2f} %  ({len(dataset):,} training samples) → {out / 'result.json'}")


def _reusable_selection(folder: Path, method: str, ratio: float, seed: int, dataset, params: dict[str, Any], amp: str):
    """The finished selection in ``folder``, refused unless it answers this very request (method, ratio,
    seed, data, mixed precision and every parameter with its default: a changed default must not reuse
    an old run). The device may differ: it does not change what was selected."""
    from .api import get_method
    from .selection import load_selection
    from .selection.method import params_record

    stored = load_selection(folder)
    wanted = params_record(get_method(method).make_params(**params))
    found = stored.manifest.get("params", {})
    differ = [field for field, same in (("method", stored.method == method), ("ratio", stored.manifest["ratio_requested"] == ratio),
                                        ("seed", stored.manifest["seed"] == seed), ("dataset", stored.fingerprint == dataset.fingerprint),
                                        # a selection from before --amp ran in float32
                                        ("mixed precision (--amp)", stored.manifest.get("runtime", {}).get("amp", "off") == amp))
              if not same]
    differ += [f"parameter {key}" for key in sorted(set(wanted) | set(found)) if wanted.get(key) != found.get(key)]
    if differ:
        raise InputError(f"{folder / 'selection.json'}: the finished selection there differs in {', '.join(differ)}; "
                         f"choose another --out, or delete {folder.parent} to start over (its trainings belong to that selection)")
    return stored


@app.command()
def quickstart(
    data: DataOpt = "fashion-mnist",
    ratio: Annotated[float, typer.Option("--ratio", help="Share of the training set to keep.")] = 0.5,
    method: Annotated[str, typer.Option("--method", help="Selection method.")] = "rl-selector",
    recipe_name: Annotated[str, typer.Option("--recipe", "--preset", help="Recipe of the target network and of the evaluation training; --preset is the old name. " + RECIPE_HELP)] = "cpu",
    seed: SeedOpt = 0,
    limit: LimitOpt = None,
    data_root: DataRootOpt = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for the selection and both training runs.")] = Path("runs/quickstart"),
    resume: ResumeOpt = False,
    device: DeviceOpt = "auto",
    amp: AmpOpt = "off",
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """The main job: select a subset, train on it and on a random subset of the same size, compare."""
    from .api import get_method
    from .api import select as run_select
    from .io import output_lock
    from .recipes import get_recipe
    from .train import train_model
    from .train.device import Runtime

    _set_threads(threads)
    try:
        recipe = get_recipe(recipe_name).with_seed(seed)
        runtime = {"device": device, "amp": amp}  # the selection's networks and both evaluation trainings alike
        Runtime.of(**runtime)  # refused before the data loads
        dataset = _load(data, data_root, limit, seed)
        with output_lock(out, "rlselector quickstart"):
            selections = {}
            wanted = ratio
            for name in dict.fromkeys((method, "random")):  # the method, then random (once when it is random)
                sel_dir = out / f"selection-{name}"
                params = {"recipe": recipe_name} if "target-training" in get_method(name).inputs else {}
                if (sel_dir / "selection.json").exists():
                    selections[name] = _reusable_selection(sel_dir, name, wanted, seed, dataset, params, amp)
                else:
                    selections[name] = run_select(dataset, name, wanted, seed, out=sel_dir, resume=resume, progress=not quiet, cache_dir=out / "cache",
                                                  **runtime, **params)
                wanted = selections[method].manifest["n_kept"] / len(dataset)  # random keeps exactly as many
            rows = []
            for name, sel in selections.items():
                run_dir = out / f"train-{name}"
                resume_run = (run_dir / "checkpoint.pt").exists()
                _, result = train_model(sel.subset(dataset), model=recipe.model, width=recipe.width, config=recipe.train,
                                        out_dir=run_dir, resume=resume_run, progress=not quiet, **runtime)
                rows.append((name, sel, result))
    except InputError as err:
        _fail(err)
    table = Table(title=f"{dataset.name}: {100 * ratio:.0f} % kept, {recipe.model} width {recipe.width}, {recipe.train.epochs} epochs, seed {seed}")
    for column in ("subset", "kept", "test top-1 %", "selection s", "selection"):
        table.add_column(column)
    for name, sel, result in rows:
        table.add_row(name, f"{sel.manifest['n_kept']:,}", f"{result.top1:.2f}", f"{sel.manifest['timings']['selection_s']:.0f}", str(sel.path))
    console.print(table)
    summary = {name: {"top1": result.top1, "top5": result.top5, "selection": str(sel.path), "n_kept": sel.manifest["n_kept"]} for name, sel, result in rows}
    from .io import atomic_write_json

    atomic_write_json(out / "quickstart.json", summary)
    console.print(f"selection: {selections[method].path}   summary: {out / 'quickstart.json'}")


@app.command()
def bench(
    grid: Annotated[Optional[str], typer.Option("--grid", "--preset", help="Built-in benchmark grid (--preset is the old name): " + ", ".join(GRIDS) + ".")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML file describing a custom grid (methods, ratios, seeds, models, recipe).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Results directory; a finished cell is stored at once and skipped when the grid is run again.")] = Path("runs/bench"),
    data_root: DataRootOpt = None,
    threads: Annotated[Optional[int], typer.Option("--threads", min=1, help="CPU threads torch may use; default: the grid's 'threads', else the cores not busy at start.")] = None,
    only: Annotated[Optional[str], typer.Option("--only", help="Run only these methods of the grid (comma-separated, e.g. random,rl-selector); their cells are the grid's own.")] = None,
    seeds: Annotated[Optional[str], typer.Option("--seeds", help="Run these seeds instead of the grid's (comma-separated, e.g. 0,1): one chunk per parallel or later run; other seeds extend the grid. Cells are the grid's own.")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="Where every network of the grid trains (auto, cpu, cuda, cuda:N, mps); default: the grid's runtime, else auto. Not part of the cells' identity.")] = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help="Mixed precision for every network of the grid (off, bf16, fp16); default: the grid's runtime, else off. Part of the cells' identity: other values train other cells.")] = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a benchmark grid (methods x ratios x seeds x evaluation models); resumable; logs the time left."""
    from dataclasses import replace

    from .bench import load_bench_config, restrict_methods, restrict_seeds, run_bench
    from .bench.grid import checked_runtime

    try:
        spec = load_bench_config(grid=grid, path=config, data_root=data_root)
        if only is not None:
            spec = restrict_methods(spec, [name.strip() for name in only.split(",") if name.strip()])
        if seeds is not None:
            spec = restrict_seeds(spec, _seed_list(seeds))
        chosen = {key: value for key, value in (("device", device), ("amp", amp)) if value is not None}
        if chosen:
            spec = replace(spec, runtime=checked_runtime({**spec.runtime, **chosen}, "--device/--amp"))
        spec = replace(spec, threads=_set_threads(threads if threads is not None else spec.threads))
        run_bench(spec, out, progress=not quiet)
    except InputError as err:
        _fail(err)
    console.print(f"results in {out}; write the report with: rlselector report {out}")


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="A results directory written by 'rlselector bench'.")],
    split: Annotated[str, typer.Option("--split", help="Accuracy shown: test (DIR/report/) or validation (DIR/report-validation/; needs a grid with validation:).")] = "test",
) -> None:
    """Write the HTML page and Markdown/CSV tables of a benchmark results directory."""
    from .bench.report import write_report

    try:
        paths = write_report(results, split=split)
    except InputError as err:
        _fail(err)
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
