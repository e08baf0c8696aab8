"""What a benchmark grid is: one typed object, read from a built-in grid or a YAML file, checked up front.

A grid is methods × ratios × seeds × evaluation models (× label-noise levels), trained with one
recipe. The YAML schema is the :class:`BenchConfig` fields; every built-in grid in
:data:`~rlselector.bench.grids.GRIDS` is written in that same schema, so ``rlselector bench --grid
cpu-full`` and a YAML file holding the same mapping run the same grid. A minimal file::

    data: fashion-mnist        # any --data spec (cifar10:/path, npz:/file.npz, ...)
    limit: 10000               # seeded, class-stratified training subset (optional)
    test_limit: 2000           # seeded, class-stratified test subset (optional)
    methods: [random, el2n, rl-selector]
    ratios: [0.3, 0.5, 0.7]
    seeds: [0, 1, 2]
    models: [resnet18, {name: vgg16, width: 16}]
    recipe: cpu                # a recipe name, or {base: cpu, epochs: 3, lr: 0.05, ...}
    method_params: {rl-selector: {recipe: cpu}}
    proxy: {width: 8, epochs: 4, batch_size: 64, record_epochs: [0, 1, 2, 4]}   # optional (0 = at initialisation, for GraNd)
    label_noise: [0.0, 0.2]    # shares of training labels flipped (0 = clean)
    validation: 0.1            # a seeded, class-stratified hold-out of the training set (optional)
    runtime: {device: cuda, amp: bf16, channels_last: true}   # where every network trains (optional)
    transfer: {data: mnist, limit: 10000, recipe: {base: cpu, epochs: 2}}    # optional
    analysis: {tsne: {method: rl-selector, ratio: 0.9}}                     # optional

Everything is validated by :func:`load_bench_config` before any data is read or model trained:
unknown keys (the known ones are the schema's fields), methods, models, recipes, parameters and
out-of-range ratios raise :class:`~rlselector.errors.InputError` naming the field and the fix.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..train import TrainConfig
from .grids import GRIDS


@dataclass(frozen=True)
class EvalModel:
    """An evaluation architecture: trained from scratch on every selected subset."""

    name: str
    width: int

    @property
    def label(self) -> str:
        return f"{self.name} w{self.width}"


@dataclass(frozen=True)
class TransferConfig:
    """Pre-train on a selected subset of the grid's dataset, fine-tune on ``data`` (paper Table 1)."""

    data: str
    limit: int | None = None
    test_limit: int | None = None
    recipe: TrainConfig = field(default_factory=TrainConfig)
    """The fine-tuning recipe (all weights fine-tuned; the classifier is re-initialised)."""
    scratch: bool = True
    """Also train on ``data`` from scratch (no pre-training): the reference row."""
    models: tuple[str, ...] = ()
    """Evaluation models to transfer (names); empty = every evaluation model."""


@dataclass(frozen=True)
class TsneConfig:
    method: str
    ratio: float
    seed: int
    noise: float = 0.0
    samples: int = 2000
    """Points in the picture (a seeded uniform sample of the training set)."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Paper §5.4: Dunn index of full vs selected features, t-SNE of kept vs pruned samples.

    Features are the penultimate features of the full-data model (``model``, trained with the grid's
    recipe) on the un-augmented training set, so every selection is judged in one feature space and
    random selection is the reference a method's Dunn index must beat.
    """

    dunn: bool = True
    model: str | None = None
    """Evaluation model whose full-data run provides the features (None = the first one)."""
    seeds: tuple[int, ...] = ()
    """Seeds analysed (empty = the first seed)."""
    max_samples: int = 5000
    """Dunn index on at most this many points: a seeded uniform sample of the selected set, and a
    sample of the same size of the full set (the minimum inter-class distance shrinks with more
    points, so both sides are compared at equal size)."""
    tsne: TsneConfig | None = None


@dataclass(frozen=True)
class BenchConfig:
    """A benchmark grid. Field names are the YAML keys."""

    name: str
    data: str
    methods: tuple[str, ...]
    ratios: tuple[float, ...]
    seeds: tuple[int, ...]
    models: tuple[EvalModel, ...]
    recipe: TrainConfig
    recipe_name: str = "custom"
    data_root: str | None = None
    limit: int | None = None
    test_limit: int | None = None
    data_seed: int = 0
    """Seed of the ``limit``/``test_limit`` subsets and of the validation split: fixed, so every seed sees the same data."""
    validation: float | None = None
    """Share of the training set (after ``limit``) held out, seeded by ``data_seed`` and class-stratified,
    before selection: neither selection nor evaluation training sees it; every training cell records its
    final-epoch accuracy on it beside the test accuracy, so defaults are chosen on it, never on the test
    set. In (0, 0.5); None = no validation split."""
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    class_balanced: bool = False
    proxy: dict[str, Any] | None = None
    """Proxy-run recipe shared by the score-based methods (None = the project's default for the data)."""
    full_data: bool = True
    """Train on the whole training set too: the reference row of every table."""
    label_noise: tuple[float, ...] = (0.0,)
    noise_seed: int = 0
    transfer: TransferConfig | None = None
    analysis: AnalysisConfig | None = field(default_factory=lambda: AnalysisConfig())
    threads: int | None = None
    """torch threads for the run (None = torch's default). The cpu-* grids use 1: on a 2-core machine
    shared with other jobs, two threads oversubscribe the cores (measured: ResNet-18 w8 trained at
    60–90 img/s with 2 threads vs 400–680 img/s with 1 while other jobs ran)."""
    runtime: dict[str, Any] = field(default_factory=dict)
    """Where every network of the grid trains (selections' proxies and targets, evaluations), as
    ``select``/``train`` take it: ``device`` (default auto), ``amp`` (off), ``channels_last``,
    ``compile``, ``workers``. Mixed precision is part of the cells' identity, the device is not."""
    source: dict[str, Any] = field(default_factory=dict, compare=False)
    """The mapping this config was read from (stored beside the results)."""

    def proxy_config(self):
        """The :class:`~rlselector.selection.proxy.ProxyConfig` of ``proxy`` (None = default)."""
        if self.proxy is None:
            return None
        from ..selection.proxy import ProxyConfig

        spec = dict(self.proxy)
        recipe_keys = {f.name for f in dataclasses.fields(TrainConfig)}
        recipe = _train_config({k: spec.pop(k) for k in list(spec) if k in recipe_keys or k in (_BASE, _OLD_BASE)}, where="proxy")
        kwargs = {k: tuple(v) if k == "record_epochs" else v for k, v in spec.items()}
        try:
            config = ProxyConfig(recipe=recipe, **kwargs)
        except TypeError as err:
            known = sorted({f.name for f in dataclasses.fields(ProxyConfig)} - {"recipe"} | recipe_keys | {_BASE})
            raise InputError(f"proxy: {err}; known keys: {', '.join(known)}") from err
        config.validate()
        return config


# ------------------------------------------------------------------------------------------
# loading and validation
# ------------------------------------------------------------------------------------------
_BASE, _OLD_BASE = "base", "preset"
"""The key of a recipe mapping naming the recipe it starts from, and its old name (refused with the new one)."""


def load_bench_config(grid: str | None = None, path: str | Path | None = None, data_root: str | None = None) -> BenchConfig:
    """Read a built-in grid by name or a YAML file (exactly one); ``data_root`` overrides the file's.

    Everything is checked here, before any data is read: a listed method that is not registered,
    an unknown model or recipe, a bad ratio or parameter raises :class:`InputError`.
    """
    if (grid is None) == (path is None):
        raise InputError(f"give exactly one of --grid NAME (one of: {', '.join(GRIDS)}) or --config FILE.yaml")
    if grid is not None:
        if grid not in GRIDS:
            raise InputError(f"unknown benchmark grid {grid!r}; known grids: {', '.join(GRIDS)}")
        spec, where = {"name": grid, **GRIDS[grid]}, f"grid {grid!r}"
    else:
        path = Path(path)  # type: ignore[arg-type]
        if not path.exists():
            raise InputError(f"{path}: grid file not found; write a YAML mapping (see rlselector.bench.grid)")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise InputError(f"{path}: not valid YAML ({err})") from err
        if not isinstance(spec, dict):
            raise InputError(f"{path}: a grid file must hold a mapping (data:, methods:, ratios:, ...), got {type(spec).__name__}")
        spec.setdefault("name", path.stem)
        where = str(path)
    if data_root is not None:
        spec = {**spec, "data_root": data_root}
    return config_from_dict(spec, where=where)


def config_from_dict(spec: dict[str, Any], *, where: str = "grid") -> BenchConfig:
    """Build and validate a :class:`BenchConfig` from a mapping in the YAML schema."""
    # recipe_name is derived from recipe, source is the mapping itself; width is every model's default
    _check_keys(spec, BenchConfig, where, extra=("summary", "width"), derived=("recipe_name", "source"))
    for required in ("data", "methods", "ratios"):
        if required not in spec:
            raise InputError(f"{where}: key {required!r} is required")

    recipe, recipe_name, recipe_model, recipe_width = _recipe(spec.get("recipe", "cpu"), where=f"{where}: recipe")
    width = _int(spec.get("width", recipe_width), f"{where}: width", minimum=1)
    models = tuple(_eval_model(m, width, where) for m in _list(spec.get("models", [recipe_model]), f"{where}: models"))
    if not models:
        raise InputError(f"{where}: models is empty; list at least one evaluation model")
    methods = tuple(str(m) for m in _list(spec["methods"], f"{where}: methods"))
    ratios = tuple(_ratio(r, f"{where}: ratios") for r in _list(spec["ratios"], f"{where}: ratios"))
    seeds = tuple(_int(s, f"{where}: seeds") for s in _list(spec.get("seeds", [0]), f"{where}: seeds"))
    noise = tuple(_noise(p, f"{where}: label_noise") for p in _list(spec.get("label_noise", [0.0]), f"{where}: label_noise"))
    for name, values in (("methods", methods), ("ratios", ratios), ("seeds", seeds), ("models", models), ("label_noise", noise)):
        if not values:
            raise InputError(f"{where}: {name} is empty")
        if len(set(values)) != len(values):
            raise InputError(f"{where}: {name} lists a value twice: {list(values)}")

    method_params = spec.get("method_params") or {}
    if not isinstance(method_params, dict) or not all(isinstance(v, dict) for v in method_params.values()):
        raise InputError(f"{where}: method_params must map a method name to a mapping of parameters")
    stray = sorted(set(method_params) - set(methods))
    if stray:
        raise InputError(f"{where}: method_params names method(s) {stray} that the grid does not run")
    _check_methods(methods, method_params, where)
    _check_data(spec["data"], spec.get("data_root"), where)

    config = BenchConfig(
        name=str(spec.get("name", "grid")),
        data=str(spec["data"]),
        data_root=spec.get("data_root"),
        limit=_opt_int(spec.get("limit"), f"{where}: limit"),
        test_limit=_opt_int(spec.get("test_limit"), f"{where}: test_limit"),
        data_seed=_int(spec.get("data_seed", 0), f"{where}: data_seed"),
        validation=_validation(spec.get("validation"), f"{where}: validation"),
        methods=methods,
        ratios=ratios,
        seeds=seeds,
        models=models,
        recipe=recipe,
        recipe_name=recipe_name,
        method_params={k: dict(v) for k, v in method_params.items()},
        class_balanced=bool(spec.get("class_balanced", False)),
        proxy=dict(spec["proxy"]) if spec.get("proxy") else None,
        full_data=bool(spec.get("full_data", True)),
        label_noise=noise,
        noise_seed=_int(spec.get("noise_seed", 0), f"{where}: noise_seed"),
        transfer=_transfer(spec.get("transfer"), recipe, models, where),
        analysis=None,
        threads=_opt_int(spec.get("threads"), f"{where}: threads"),
        runtime=checked_runtime(spec.get("runtime") or {}, f"{where}: runtime"),
        source={k: v for k, v in spec.items() if k != "summary"},
    )
    config.proxy_config()  # validates the proxy mapping now
    return replace(config, analysis=_analysis(spec.get("analysis", {}), config, where))


def checked_runtime(runtime: Any, where: str) -> dict[str, Any]:
    """A grid's ``runtime`` mapping, refused now if a key is unknown or a value is one ``train`` refuses."""
    from ..train.device import Runtime

    if not isinstance(runtime, dict):
        raise InputError(f"{where}: must be a mapping such as {{device: cuda, amp: bf16}}, got {runtime!r}")
    known = [f.name for f in dataclasses.fields(Runtime)]  # the options Runtime.of takes
    unknown = sorted(set(runtime) - set(known))
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(known)}")
    try:
        Runtime.of(**runtime)
    except InputError as err:
        raise InputError(f"{where}: {err}") from err
    return dict(runtime)


def restrict_methods(config: BenchConfig, names: list[str]) -> BenchConfig:
    """The grid run for ``names`` only (``bench --only``): each must be a method of the grid; cells
    keep their keys, so a restricted run and a full one share their results."""
    unknown = [n for n in names if n not in config.methods]
    if unknown or not names:
        raise InputError(f"--only: {unknown or 'no method'} not among the grid's methods; give a comma-separated list of: "
                         f"{', '.join(config.methods)}")
    methods = tuple(m for m in config.methods if m in names)
    return replace(config, methods=methods, method_params={k: v for k, v in config.method_params.items() if k in methods})


def restrict_seeds(config: BenchConfig, seeds: list[int]) -> BenchConfig:
    """The grid run for ``seeds`` instead of its own (``bench --seeds``): seeds of the grid split it into
    parallel or resumable chunks, other seeds extend it; cells keep their keys, so the chunks of one grid
    merge into one results directory. The analysis keeps the seeds it shares with the chunk, and is left
    to the chunk that holds them."""
    if not seeds:
        raise InputError("--seeds: give a comma-separated list of integer seeds, e.g. --seeds 0,1")
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise InputError(f"--seeds {','.join(map(str, seeds))}: seeds must be distinct non-negative integers")
    analysis = config.analysis
    if analysis is not None:
        kept = tuple(s for s in analysis.seeds if s in seeds)
        tsne = analysis.tsne if analysis.tsne is not None and analysis.tsne.seed in seeds else None
        analysis = replace(analysis, seeds=kept, tsne=tsne) if kept else None
    return replace(config, seeds=tuple(seeds), analysis=analysis)


def _recipe(value: Any, *, where: str) -> tuple[TrainConfig, str, str, int]:
    """(training config, its name, the recipe's model, the recipe's width) of a recipe name or mapping."""
    from ..recipes import get_recipe

    if isinstance(value, str):
        recipe = get_recipe(value)
        return recipe.train, value, recipe.model, recipe.width
    if not isinstance(value, dict):
        raise InputError(f"{where}: give a recipe name (cpu, cpu-tiny, paper, ...) or a mapping of training options")
    config = _train_config(value, where=where)
    base_name = value.get(_BASE, "cpu")
    base = get_recipe(base_name)
    name = base_name if config == base.train else f"{base_name}+" + ",".join(f"{k}={v}" for k, v in value.items() if k != _BASE)
    return config, name, base.model, base.width


def _train_config(value: dict[str, Any], *, where: str) -> TrainConfig:
    """A TrainConfig from ``{base: NAME, field: value, ...}`` (the named recipe's training, overridden)."""
    from ..recipes import get_recipe

    value = dict(value)
    if _OLD_BASE in value:
        raise InputError(f"{where}: the key {_OLD_BASE!r} was renamed to {_BASE!r} (the recipe the mapping starts from); "
                         f"write {_BASE}: {value[_OLD_BASE]}")
    base = get_recipe(value.pop(_BASE, "cpu")).train
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed"}
    unknown = sorted(set(value) - known)
    if unknown:
        raise InputError(f"{where}: unknown training option(s) {unknown}; known: {', '.join(sorted(known))}, {_BASE}")
    if "milestones" in value:
        value["milestones"] = tuple(value["milestones"])
    try:
        config = replace(base, **value)
    except TypeError as err:
        raise InputError(f"{where}: {err}") from err
    config.validate()
    return config


def _eval_model(value: Any, width: int, where: str) -> EvalModel:
    from ..models import list_models

    if isinstance(value, str):
        name, model_width = value, width
    elif isinstance(value, dict) and "name" in value and set(value) <= {"name", "width"}:
        name, model_width = str(value["name"]), _int(value.get("width", width), f"{where}: models.width", minimum=1)
    else:
        raise InputError(f"{where}: a model is a name or {{name: NAME, width: W}}, got {value!r}")
    if name not in list_models():
        raise InputError(f"{where}: unknown model {name!r}; known models: {', '.join(list_models())}")
    return EvalModel(name, model_width)


def _check_methods(methods: tuple[str, ...], params: dict[str, dict[str, Any]], where: str) -> None:
    """Every listed method must be registered (nothing is skipped silently) and its parameters valid."""
    from ..api import list_methods
    from ..selection import METHODS

    list_methods()  # loads the built-in methods
    missing = [m for m in methods if m not in METHODS]
    if missing:
        raise InputError(
            f"{where}: method(s) {missing} are not registered in this installation, so the grid cannot run "
            f"them (nothing is skipped silently); registered methods: {', '.join(sorted(METHODS))}. "
            f"Run a custom grid (--config FILE.yaml) with the registered ones."
        )
    for name, values in params.items():
        METHODS[name].make_params(**values)


def _check_data(spec: str, root: str | None, where: str) -> None:
    from ..data.registry import parse_spec

    try:
        parse_spec(str(spec), root)
    except InputError as err:
        raise InputError(f"{where}: {err} (a built-in grid's data location is given with --data-root)") from err


def _transfer(value: Any, recipe: TrainConfig, models: tuple[EvalModel, ...], where: str) -> TransferConfig | None:
    if not value:
        return None
    if not isinstance(value, dict) or "data" not in value:
        raise InputError(f"{where}: transfer must be a mapping with at least 'data' (the fine-tuning dataset)")
    _check_keys(value, TransferConfig, f"{where}: transfer", extra=("data_root",))
    data = str(value["data"])
    _check_data(data, value.get("data_root"), f"{where}: transfer")
    if value.get("data_root"):
        data = f"{data.partition(':')[0]}:{value['data_root']}"
    fine_tune = recipe
    if "recipe" in value:
        fine_tune = _recipe(value["recipe"], where=f"{where}: transfer.recipe")[0]
    names = tuple(str(m) for m in _list(value.get("models", []), f"{where}: transfer.models"))
    stray = sorted(set(names) - {m.name for m in models})
    if stray:
        raise InputError(f"{where}: transfer.models {stray} are not evaluation models of the grid")
    return TransferConfig(
        data=data,
        limit=_opt_int(value.get("limit"), f"{where}: transfer.limit"),
        test_limit=_opt_int(value.get("test_limit"), f"{where}: transfer.test_limit"),
        recipe=fine_tune,
        scratch=bool(value.get("scratch", True)),
        models=names,
    )


def _analysis(value: Any, config: BenchConfig, where: str) -> AnalysisConfig | None:
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    if not isinstance(value, dict):
        raise InputError(f"{where}: analysis must be a mapping (dunn:, model:, seeds:, max_samples:, tsne:) or false")
    _check_keys(value, AnalysisConfig, f"{where}: analysis")
    if not config.full_data:
        raise InputError(f"{where}: analysis needs the full-data run's features; set full_data: true or analysis: false")
    model = value.get("model") or config.models[0].name
    if model not in {m.name for m in config.models}:
        raise InputError(f"{where}: analysis.model {model!r} is not an evaluation model of the grid")
    seeds = tuple(_int(s, f"{where}: analysis.seeds") for s in _list(value.get("seeds", [config.seeds[0]]), f"{where}: analysis.seeds"))
    if not set(seeds) <= set(config.seeds):
        raise InputError(f"{where}: analysis.seeds {list(seeds)} must be seeds of the grid {list(config.seeds)}")
    tsne = value.get("tsne", {})
    tsne_config = None
    if tsne is not None and tsne is not False:
        tsne = {} if tsne is True else dict(tsne)
        _check_keys(tsne, TsneConfig, f"{where}: analysis.tsne")
        default_method = "rl-selector" if "rl-selector" in config.methods else config.methods[0]
        tsne_config = TsneConfig(
            method=str(tsne.get("method", default_method)),
            ratio=_ratio(tsne.get("ratio", max(config.ratios)), f"{where}: analysis.tsne.ratio"),
            seed=_int(tsne.get("seed", seeds[0]), f"{where}: analysis.tsne.seed"),
            noise=_noise(tsne.get("noise", config.label_noise[0]), f"{where}: analysis.tsne.noise"),
            samples=_int(tsne.get("samples", 2000), f"{where}: analysis.tsne.samples", minimum=10),
        )
        if tsne_config.method not in config.methods or tsne_config.ratio not in config.ratios or tsne_config.seed not in config.seeds \
                or tsne_config.noise not in config.label_noise:
            raise InputError(f"{where}: analysis.tsne {tsne} names no cell of the grid (method, ratio, seed and noise must be in it)")
    return AnalysisConfig(
        dunn=bool(value.get("dunn", True)),
        model=model,
        seeds=seeds,
        max_samples=_int(value.get("max_samples", 5000), f"{where}: analysis.max_samples", minimum=10),
        tsne=tsne_config,
    )


# --- small typed readers ---------------------------------------------------------------------
def _check_keys(value: dict[str, Any], schema: type, where: str, *, extra: tuple[str, ...] = (), derived: tuple[str, ...] = ()) -> None:
    """Refuse keys that are not fields of the dataclass ``schema`` (less ``derived``) or ``extra``."""
    known = {f.name for f in dataclasses.fields(schema)} - set(derived) | set(extra)
    unknown = sorted(set(value) - known)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")


def _list(value: Any, where: str) -> list:
    if isinstance(value, (str, int, float, dict)):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: expected a list, got {value!r}")
    return list(value)


def _int(value: Any, where: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{where}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{where}: must be at least {minimum}, got {value}")
    return int(value)


def _opt_int(value: Any, where: str) -> int | None:
    return None if value is None else _int(value, where, minimum=1)


def _ratio(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) <= 1.0:
        raise InputError(f"{where}: a ratio is the share of training samples to KEEP, in (0, 1]; got {value!r} (write 0.3 for 30 %)")
    return float(value)


def _validation(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 0.5:
        raise InputError(f"{where}: the validation split is the share of the training set held out, in (0, 0.5); got {value!r} (write 0.1 for 10 %)")
    return float(value)


def _noise(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) < 1.0:
        raise InputError(f"{where}: label noise is the share of training labels flipped, in [0, 1); got {value!r}")
    return float(value)
