"""The one contract every selection method stands behind, and the registry that lists them.

A method is a class with a ``name``, a one-line ``summary``, the ``inputs`` it uses and a typed
``Params`` dataclass (one help line per field). It receives a :class:`SelectionContext` and returns
a :class:`MethodResult`; :func:`rlselector.select` validates the inputs before any heavy work and
turns the result into the :class:`~rlselector.selection.format.Selection` format.

Score-based methods subclass :class:`ScoreMethod`: they only compute a score; the policy that turns
it into a subset (keep-highest, keep-lowest, band, stratified, random; class-balanced or not) is a
parameter, never a copy of code.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable

import numpy as np

from ..data.base import Dataset
from ..errors import InputError
from .cache import ArtifactCache
from .dynamics import ProxyRecord
from .params import build_params, param
from .policies import POLICIES, apply_policy, class_quotas
from .proxy import proxy_seed, resolve_config, run_proxy


@dataclass
class SelectionCost:
    """Seconds a selection spent, by stage: the manifest's ``timings`` (stages a method did not run
    stay None and are left out). The proxy stage is kept apart from the method's own time."""

    proxy_s: float = 0.0
    """Training the proxy run(s) this selection needed (runs read from a cache cost nothing here)."""
    proxy_cached: bool = False
    """Whether the shared proxy run came from a cache."""
    target_s: float | None = None
    """Training the target network (RL-Selector, cover-static)."""
    agent_s: float | None = None
    """RL-Selector's agent: acting and updating."""
    cover_s: float | None = None
    """RL-Selector's ε-cover refreshes."""
    decision_s: float | None = None
    """RL-Selector's final decision, when it is more than a threshold."""
    ssl_s: float | None = None
    """Training the self-supervised encoder (prototypes)."""
    reused_s: float | None = None
    """What a stage read from the cache (target features, encoder) cost when it was trained: charged to
    this selection as if trained again, so a cache never makes a method look cheaper."""

    def add_proxy_run(self, seconds: float, cached: bool, *, shared: bool = False) -> None:
        """Charge one proxy run: trained here, to ``proxy_s``; read from the cache, to ``reused_s`` (what
        training it took), except the ``shared`` run 0 of every method, which the caller charges once."""
        if not cached:
            self.proxy_s += float(seconds)
        elif not shared:
            self.reused_s = (self.reused_s or 0.0) + float(seconds)

    def timings(self, total_seconds: float) -> dict[str, float | bool]:
        """The manifest's ``timings``: the method's own seconds (total minus proxy), then each stage."""
        stages = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {
            "selection_s": round(total_seconds - self.proxy_s, 3),
            "proxy_s": round(self.proxy_s, 3),
            "proxy_cached": self.proxy_cached,
            **{name: round(value, 3) for name, value in stages.items() if name not in ("proxy_s", "proxy_cached") and value is not None},
        }


@dataclass
class SelectionContext:
    """Everything a method may read. Heavy inputs (the proxy run) are produced on first use."""

    dataset: Dataset
    ratio: float
    """Share of the training set to keep, in (0, 1]."""
    seed: int
    class_balanced: bool = False
    """Keep each class in proportion to its size."""
    features: np.ndarray | None = None
    """User-supplied per-sample features (N, d), float; methods that embed use these instead of a proxy."""
    dynamics: Any = None
    """User-supplied training dynamics (a ProxyRecord), replacing the proxy run."""
    workdir: Path | None = None
    """Where a method keeps checkpoints and caches for resume; None = no checkpoints."""
    cache_dir: Path | None = None
    """Shared cache of proxy runs, keyed by (dataset fingerprint, model, recipe, seed, mixed precision)."""
    resume: bool = False
    """Continue an interrupted run from its last checkpoint in ``workdir``."""
    progress: bool = True
    model: Any = None
    """The user's model factory (``build(*, in_channels, num_classes, image_size) -> nn.Module``) for the
    target network of the methods that train one; None = the recipe's registered model."""
    proxy_config: Any = None
    """The recipe of the proxy run (a ProxyConfig); None = the default for the dataset."""
    runtime: dict[str, Any] = field(default_factory=dict)
    """train()'s ``device``, ``amp``, ``channels_last``, ``compile`` and ``workers`` for every network a
    method trains (proxy, target, encoder); empty = train()'s defaults. :func:`rlselector.select`
    checks them before any work."""
    cost: SelectionCost = field(default_factory=SelectionCost)
    """Seconds spent per stage; the proxy stage is recorded apart from the method's own time."""

    @property
    def budget(self) -> int:
        """Number of samples to keep: round(ratio·N), at least one."""
        return max(1, int(round(self.ratio * len(self.dataset))))

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.train.label_array

    def budget_groups(self, per_class: bool) -> list[tuple[np.ndarray, int]]:
        """``(member indices, quota)`` pairs: one per class with proportional quotas summing to the
        budget, or the whole set with the whole budget."""
        if not per_class:
            return [(np.arange(len(self.dataset)), self.budget)]
        labels = self.labels
        quotas = class_quotas(labels, self.budget, self.dataset.num_classes)
        return [(np.flatnonzero(labels == k), int(q)) for k, q in enumerate(quotas)]

    def rng(self, stream: str = "") -> np.random.Generator:
        """A numpy generator for this run's seed; distinct ``stream`` names give independent streams."""
        return np.random.default_rng([self.seed, *stream.encode()])

    @property
    def cache(self) -> ArtifactCache | None:
        """The on-disk cache of reusable stages, or None without a ``cache_dir``."""
        return ArtifactCache(self.cache_dir, amp=self.runtime.get("amp", "off")) if self.cache_dir is not None else None

    def proxy(self) -> ProxyRecord:
        """The proxy run's record (per-epoch losses, correctness, logits, features), cached on disk."""
        if self.dynamics is not None:
            return self.dynamics
        record, seconds, cached = run_proxy(
            self.dataset, self.proxy_config, seed=self.seed, cache_dir=self.cache_dir, progress=self.progress, runtime=self.runtime
        )
        self.cost.add_proxy_run(seconds, cached, shared=True)
        self.cost.proxy_cached = cached
        self.dynamics = record
        return record

    def proxy_records(self, count: int) -> list[ProxyRecord]:
        """``count`` proxy runs with distinct seeds (for scores averaged over runs, as in EL2N/GraNd).

        The first is :meth:`proxy` (shared with every other method); the others are cached alike and
        their training time is added to the proxy cost, or, read from the cache, to ``reused_s`` (the
        selection costs what training them did, whichever method trained them first).
        """
        records = [self.proxy()]
        config = resolve_config(self.dataset, self.proxy_config)
        for index in range(1, count):
            record, seconds, cached = run_proxy(
                self.dataset, config, seed=proxy_seed(self.seed, index), cache_dir=self.cache_dir, progress=self.progress,
                runtime=self.runtime,
            )
            self.cost.add_proxy_run(seconds, cached)
            records.append(record)
        return records

    def check_embeddings(self, method: str) -> None:
        """Refuse, before any training, a features-based method whose features would come from a
        proxy run that does not record them (the user's ``--features`` need no check here)."""
        if self.features is None:
            self.check_proxy_inputs(method, features=(None,))

    def check_proxy_inputs(
        self,
        method: str,
        *,
        logits: Iterable[int | None] = (),
        features: Iterable[int | None] = (),
        margin: bool = False,
        seeds: int = 1,
        min_epochs: int = 1,
    ) -> None:
        """Refuse, before any training, a request the proxy record cannot serve.

        ``logits`` / ``features`` list the epochs a method reads (None = its default, resolved by the
        method); with user dynamics the record is checked, else the proxy config's recorded epochs.
        """
        user = self.dynamics
        if user is not None:
            if not isinstance(user, ProxyRecord):
                raise InputError(
                    f"method {method!r}: dynamics must be a ProxyRecord (read files with "
                    f"rlselector.selection.dynamics.load_dynamics), got {type(user).__name__}"
                )
            user.validate(n=len(self.dataset), labels=self.labels, num_classes=self.dataset.num_classes)
            if seeds > 1:
                raise InputError(
                    f"method {method!r}: seeds={seeds} needs {seeds} proxy runs but user dynamics "
                    f"({user.source}) are one run; use seeds=1 or drop --dynamics"
                )
            logit_epochs, feature_epochs, has_margin, where = user.logit_epochs, user.feature_epochs, user.margin is not None, user.source
            epochs = user.epochs
        else:
            config = resolve_config(self.dataset, self.proxy_config)
            config.validate()
            logit_epochs = feature_epochs = sorted(set(int(e) for e in config.record_epochs))
            has_margin, where = True, f"the proxy (record_epochs={logit_epochs})"
            epochs = config.recipe.epochs
        if epochs < min_epochs:
            raise InputError(
                f"method {method!r}: needs per-sample dynamics over at least {min_epochs} epochs but {where} "
                f"covers {epochs} (fields 'loss'/'correct' are E x N)"
            )
        for name, wanted, have in (("logits", logits, logit_epochs), ("features", features, feature_epochs)):
            for epoch in wanted:
                if epoch is None:
                    if not have:
                        raise InputError(f"method {method!r}: {where} has no '{name}_<epoch>' field; it needs {name}")
                elif int(epoch) not in have:
                    raise InputError(
                        f"method {method!r}: needs {name} at epoch {epoch} but {where} records them at {have}; "
                        f"choose one of those epochs"
                    )
        if margin and not has_margin:
            raise InputError(f"method {method!r}: {where} has no 'margin' field (E x N); AUM needs it")

    def embeddings(self, epoch: int | None = None) -> np.ndarray:
        """Per-sample features: the user's ``--features`` if given, else the proxy's (final epoch)."""
        if self.features is not None:
            return self.features
        return self.proxy().features_at(epoch)


@dataclass
class MethodResult:
    scores: np.ndarray
    """(N,) keep priority, higher = keep. If ``indices`` is None the subset is its top-k."""
    indices: np.ndarray | None = None
    """The kept indices when the method chooses its subset itself (e.g. RL-Selector's own ratio)."""
    raw_scores: np.ndarray | None = None
    """The method's own score, if it differs from the keep priority (e.g. EL2N value)."""
    info: dict[str, Any] = field(default_factory=dict)
    """Extra manifest fields: diagnostics, approximations used, band enforcement, ..."""


class SelectionMethod(ABC):
    """Base class of every selection method."""

    name: ClassVar[str]
    summary: ClassVar[str]
    """One line for ``rlselector methods``."""
    inputs: ClassVar[tuple[str, ...]] = ()
    """What it reads: 'features', 'proxy' (training dynamics), 'target-training' (trains its own net)."""
    reference: ClassVar[str] = ""
    """The paper the method follows."""

    @dataclass
    class Params:
        pass

    def __init__(self, params: "SelectionMethod.Params | None" = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def make_params(cls, **values: Any) -> Any:
        """The method's ``Params`` from untyped values (``-p`` text read as YAML, grid files, Python),
        each coerced to its declared type and checked against its choices and bounds once
        (:mod:`rlselector.selection.params`); a value that does not fit is an InputError."""
        return build_params(cls.Params, values, cls.name)

    @classmethod
    def reads_features(cls) -> bool:
        """Whether the user's ``--features`` replace something this method computes (its embedding,
        or the target network whose features it reads)."""
        return "features" in cls.inputs or "target-training" in cls.inputs

    def validate(self, ctx: SelectionContext) -> None:
        """Refuse bad input before heavy work; subclasses add their own checks."""

    @abstractmethod
    def run(self, ctx: SelectionContext) -> MethodResult:
        """Compute the selection."""


def policy_param(default: str, **own: str) -> Any:
    """The ``policy`` parameter of a :class:`ScoreMethod`: one of the shared policies, or of the
    method's ``own`` extra choices (name = what it means); ``default`` is the one its paper uses."""
    meanings = "".join(f"; {name}: {meaning}" for name, meaning in own.items())
    choices = (*own, *POLICIES)
    return param(default, f"how the score becomes a subset: {', '.join(choices)} (default: the paper's){meanings}", choices=choices)


class ScoreMethod(SelectionMethod):
    """A method that only scores samples; its ``policy`` parameter (:func:`policy_param`) picks the
    subset, ``default_policy`` when it declares none."""

    default_policy: ClassVar[str] = "keep-highest"
    raw_score_name: ClassVar[str] = "score"

    def __init__(self, params: "SelectionMethod.Params | None" = None) -> None:
        super().__init__(params)
        self.details: dict[str, Any] = {}
        """What :meth:`score` used (epoch, approximation, ...); merged into the manifest."""

    @abstractmethod
    def score(self, ctx: SelectionContext) -> np.ndarray:
        """(N,) raw score of each training sample."""

    def policy_name(self, ctx: SelectionContext) -> str:
        """The policy that turns scores into the subset (may depend on the ratio)."""
        return getattr(self.params, "policy", self.default_policy)

    def ranks_per_class(self, ctx: SelectionContext) -> bool:
        """Whether the policy runs inside each class with proportional quotas (``--class-balanced``;
        methods whose reference ranks per class say so here)."""
        return ctx.class_balanced

    def run(self, ctx: SelectionContext) -> MethodResult:
        raw = np.asarray(self.score(ctx), dtype=np.float64)
        labels = ctx.labels if self.ranks_per_class(ctx) else None
        kept, priority = apply_policy(
            self.policy_name(ctx), raw, ctx.budget, ctx.rng("policy"), labels=labels, num_classes=ctx.dataset.num_classes
        )
        return MethodResult(
            scores=priority,
            indices=kept,
            raw_scores=raw,
            info={"policy": self.policy_name(ctx), "raw_score": self.raw_score_name, **self.details},
        )


METHODS: dict[str, type[SelectionMethod]] = {}


def register_method(cls: type[SelectionMethod]) -> type[SelectionMethod]:
    """Class decorator: make a method selectable by its ``name``."""
    if cls.name in METHODS:
        raise RuntimeError(f"selection method {cls.name!r} registered twice")
    METHODS[cls.name] = cls
    return cls


def params_record(params: Any) -> dict[str, Any]:
    """A method's parameters as a selection manifest stores them: every field with its default filled
    in, in JSON types (paths as text, tuples as lists). Stored runs are keyed and compared by it, so
    a changed default never matches an old run."""
    return json.loads(json.dumps(dataclasses.asdict(params), default=str))
