"""RL-Selector: an actor-critic agent learns, while a target network trains, which samples are redundant.

Yang, Li, Shen, Zhao, *RL-Selector: Reinforcement Learning-Guided Data Selection via Redundancy
Assessment*, ICCV 2025 (arXiv:2506.21037). The loop of ``docs/method.md`` §4 (Algorithm 1), acting
through the training loop's per-minibatch hooks, so the target network trains once, on all the data:

- every minibatch: the target's penultimate features of the batch, with the kept set around each
  sample, are the states; the agent (A2C with a trained critic, ``rlselector.agent``) samples actions,
  they enter the dataset-wide score vector, its deterministic decisions enter the kept set the next
  states read, the features enter the feature bank, and the agent updates on the reward (ratio term
  + ε-cover rank, weighted 0.3 at ratios ≤ 0.3 and whole from 0.5, + set-aware term);
- every epoch end: the ε-sample cover and each sample's nearest same-class neighbours are recomputed
  from the bank (``rlselector.cover``, blockwise); the first epoch only fills the bank;
- at the end (``decision="policy"``, the default): the agent's own decision. The geometry is read in
  two spaces: one eval-mode pass of the target without augmentation (in the training forward's
  augmented features an exact copy is its original's nearest neighbour 11 % of the time, in eval mode
  100 %, a copy with pixel noise 82 %: BENCHMARKS.md) and the images pooled to at most 16×16, where a
  noisy copy lies next to its original whatever the network learnt; a kept neighbour close in either
  covers the sample. The deterministic policy then decides every sample in seeded order against the
  kept set the earlier decisions left, its ratio price re-set for that geometry; if the kept share
  still lies outside ``ratio ± 1`` point the top-k of the final keep scores is taken with k clipped
  into the band, and the manifest records it. ``decision="sample"`` (a draw ∝ keep probability) stays an option; it is
  mostly a random draw, and the manifest records the share of it the agent decided beyond chance.

With ``--features`` the agent runs the same loop on those fixed features (no target network).
``init_from`` starts from a finished run (target network, agent, feature bank) and fine-tunes a few
epochs to a new ratio (the transferable variant, T-RL-Selector). Diagnostics per epoch go to the
target run's ``log.jsonl`` and, at the end, to ``diagnostics.jsonl`` and ``diagnostics.png`` in the
selection directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..agent import (AgentConfig, SelectorAgent, StepStats, closest_context, kept_set_context, neighbourhood_scale, normalised_cover,
                     set_aware_cover, within_share)
from ..cover import EPSILON_RULES, Neighbours, cover, epsilon, greedy_set_aware_prune, nearest_neighbours
from ..errors import InputError
from ..io import atomic_write, atomic_write_bytes
from ..recipes import RECIPES
from ..selection.format import MANIFEST
from ..data.loader import input_thumbnails
from ..data.transforms import BatchTransform
from ..selection.policies import BAND, apply_policy, band_decision, lift_kept, policy_sample
from ..selection.method import MethodResult, SelectionContext, SelectionMethod, param, register_method
from ..selection.observe import Observer, ObservingMethod, batch_indices, batch_rows
from ..selection.target import TARGET_DIR, check_cover_inputs, target_description, target_recipe, train_target
from ..train import replay_features
from ..train.evaluate import forward_split
from ..train.distributed import DistributedContext
from ..train.loop import CHECKPOINT

VARIANTS = {
    "default": AgentConfig,
    "no-critic": AgentConfig.no_critic,
    "paper-literal": AgentConfig.paper_literal,
    "method-9": AgentConfig.method_9,
}
"""Named agent configurations: the measured default (A2C with a trained critic, set-aware state and
reward), the ablation without a critic, the paper read literally, method.md §9's."""


DECISIONS = ("policy", "threshold", "set-aware", "sample")
"""How the final kept set is read off the trained policy (see ``Params.decision``)."""

CALIBRATION_SWEEPS = 16
"""At most this many read-outs re-set the ratio price for the policy decision's geometry."""

READOUT_FEATURES = ("eval+input", "eval", "bank+input", "bank")
"""Where the policy decision reads the kept set around a sample (see ``Params.readout_features``)."""

Geometry = tuple[Neighbours, torch.Tensor]
"""Each sample's candidate list (its nearest same-class samples) and neighbourhood scale in one space."""


class SelectorHook(Observer):
    """The agent inside the training loop (the project's or the user's): feature bank, score vector,
    kept set, cover refresh, A2C steps.

    ``epochs``: the epochs the loop will run, when known (the cover after the last is skipped; None:
    refreshed after every epoch). ``total_steps``: the minibatches of the agent's cosine schedule;
    None: the epochs after the first at the minibatches counted in the first (a constant rate when
    ``epochs`` is None too). The agent is created with the first cover (sized by the bank).
    """

    def __init__(self, labels: np.ndarray, ratio: float, agent_config: AgentConfig, *, seed: int, epochs: int | None, total_steps: int | None,
                 epsilon_rule: str, epsilon_quantile: float, set_aware: bool, reference_size: int, progress: bool,
                 bank_dtype: torch.dtype = torch.float32) -> None:
        self.labels = torch.as_tensor(labels)
        self.ratio = ratio
        self.agent_config = agent_config
        self.seed = seed
        self.epochs = epochs
        self.total_steps = total_steps
        self.epsilon_rule = epsilon_rule
        self.epsilon_quantile = epsilon_quantile
        self.set_aware = set_aware
        self.reference_size = reference_size
        self.progress = progress
        self.bank_dtype = bank_dtype
        self.agent: SelectorAgent | None = None
        self.bank: torch.Tensor | None = None
        """(N, d) latest penultimate features of every sample (the states)."""
        self.scores = torch.ones(len(labels))
        """Dataset-wide score vector s: starts at 1, each sample's latest action (method.md §4)."""
        self.decisions = torch.ones(len(labels), dtype=torch.bool)
        """Each sample's latest deterministic decision (keep score ≥ 0.5 when it was last seen): the kept
        set the context and the set-aware reward read, the same one the final read-out continues."""
        self.cover_hat: torch.Tensor | None = None
        """Static Ĉ (the cover rank) of every sample for the current epoch; None until the bank is full
        (after epoch 1). The set-aware term is added per step, from the kept set at that moment."""
        self.neighbours: Neighbours | None = None
        """Each sample's nearest same-class samples in the bank at the last cover refresh."""
        self.scale: torch.Tensor | None = None
        """Each sample's neighbourhood scale (``agent.neighbourhood_scale``) at the last refresh."""
        self.history: list[dict[str, float]] = []
        self._reference_generator = torch.Generator().manual_seed(seed + 7)
        self._begin_epoch()

    def _begin_epoch(self) -> None:
        self._epoch_steps: list[StepStats] = []
        self._epoch_batches, self._agent_seconds, self._epoch_start = 0, 0.0, time.perf_counter()

    # --- the loop's interface ---------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, model) -> None:
        self._begin_epoch()

    def end_epoch(self) -> dict[str, float]:
        epoch = len(self.history)
        if self.agent is not None:
            self.agent.align_ranks(DistributedContext.current())
        cover_start = time.perf_counter()
        if self.epochs is None or epoch + 1 < self.epochs:  # the last epoch's cover would reward no further step
            self.refresh_cover()
        cover_seconds = time.perf_counter() - cover_start
        record = self._summary(epoch, cover_seconds, time.perf_counter() - self._epoch_start)
        self.history.append(record)
        self._begin_epoch()
        return {f"agent_{key}": value for key, value in record.items() if key != "epoch"}

    def on_train_end(self, model) -> None:
        if self.agent is not None:
            self.agent.finish()

    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": None if self.agent is None else self.agent.state_dict(),
            "bank": self.bank,
            "scores": self.scores,
            "decisions": self.decisions,
            "cover_hat": self.cover_hat,
            "neighbours": None if self.neighbours is None else tuple(self.neighbours),
            "scale": self.scale,
            "history": self.history,
            "reference_generator": self._reference_generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], *, ratio_changes: bool = False) -> None:
        if state["agent"] is not None:
            agent_state = dict(state["agent"], target_ratio=self.ratio) if ratio_changes else state["agent"]
            expected = state["bank"].shape[1] + self.agent_config.context_dims
            if agent_state["state_dim"] != expected or "decisions" not in state:
                raise InputError(
                    f"rl-selector: the checkpoint's agent reads states of {agent_state['state_dim']} numbers, this configuration "
                    f"{expected} (features {state['bank'].shape[1]} + kept-set context {self.agent_config.context_dims}): it was made "
                    "with another set_state, or by rlselector before round 2's agent; start the run again without --resume/--init-from"
                )
            self.agent = SelectorAgent(agent_state["state_dim"], self.ratio, self.agent_config, seed=self.seed, total_steps=self.total_steps)
            self.agent.load_state_dict(agent_state)
        self.bank, self.scores, self.history = state["bank"], state["scores"].clone(), list(state["history"])
        self.cover_hat = state["cover_hat"]
        self.decisions = state["decisions"].clone()
        self.neighbours = None if state.get("neighbours") is None else Neighbours(*state["neighbours"])
        self.scale = state.get("scale")
        self._reference_generator.set_state(state["reference_generator"])
        if ratio_changes:  # a new ratio: Ĉ is centred on the ratio, recompute it; the agent restarts its schedule
            self.history, self.agent.steps_done = [], 0
            self.refresh_cover()

    # --- the method ----------------------------------------------------------------------------------
    def observe(self, indices: Any, *, features: Any = None, logits: Any = None, labels: Any = None, losses: Any = None) -> None:
        """One minibatch: bank its features; once a cover exists, act, store the actions, update."""
        if features is None:
            raise InputError("observe(): rl-selector acts on features: pass features= (the (B, d) penultimate features of the batch)")
        indices = batch_indices(indices, len(self.labels))
        features = batch_rows(features, "features", len(indices), keep_device=True)
        self._epoch_batches += 1
        if self.bank is None:
            self.bank = torch.zeros(len(self.labels), features.shape[1], dtype=self.bank_dtype, device=features.device)
        elif self.bank.device != features.device:  # resumed from a checkpoint (read onto the CPU), or the loop moved
            self.bank = self.bank.to(features.device)
            if self.agent is not None:
                self.agent.to(features.device)
        self.bank[indices] = features.to(self.bank.dtype)
        if self.cover_hat is None:
            return
        start = time.perf_counter()
        reference = None
        if self.agent.config.ratio_feedback == "reference":
            n = len(self.labels)
            if n <= self.reference_size:  # the whole bank: the measured share is exact
                reference = self.states(torch.arange(n))
            else:
                reference = self.states(torch.randint(0, n, (self.reference_size,), generator=self._reference_generator))
        config = self.agent.config
        context = self.context(indices) if config.set_state or config.set_weight > 0 else None
        states = self.states(indices, features, context=context)
        cover_hat = set_aware_cover(self.cover_hat[indices], context, config, self.ratio)
        actions, stats = self.agent.step(
            states, cover_hat, reference_states=reference, kept_fraction=float((self.scores >= 0.5).float().mean())
        )
        self.scores[indices] = actions.float().cpu()
        if config.set_state:  # the same states: the step changed the agent, not the kept set they were read from
            self.decisions[indices] = (self.agent.keep_scores(states) >= 0.5).cpu()
        self._epoch_steps.append(stats)
        self._agent_seconds += time.perf_counter() - start

    def refresh_cover(self) -> None:
        """Ĉ for the next epoch from the bank (per class, blockwise); set-aware counts kept neighbours only."""
        agent = self._agent()
        eps = epsilon(self.bank, self.labels, rule=self.epsilon_rule, quantile=self.epsilon_quantile, seed=self.seed)
        kept = self.natural_decisions() if self.set_aware else None
        result = cover(self.bank, self.labels, eps, kept=kept, ranks=DistributedContext.current())
        self.cover_hat = normalised_cover(result, self.ratio, agent.config.cover_signal)
        if agent.config.set_state or agent.config.set_weight > 0:
            self.neighbours, self.scale = self.geometry(self.bank)

    def geometry(self, features: torch.Tensor) -> Geometry:
        """Candidate lists and neighbourhood scales of every sample in ``features``."""
        config = self._agent().config
        neighbours = nearest_neighbours(features, self.labels, config.neighbours, ranks=DistributedContext.current())
        return neighbours, neighbourhood_scale(neighbours, config)

    def context(self, rows: torch.Tensor, kept: torch.Tensor | None = None, geometries: list[Geometry] | None = None) -> torch.Tensor:
        """The kept-set context of ``rows``: against ``kept`` (default: the latest deterministic decisions)
        in ``geometries`` (default: the bank's at the last refresh; several: the closest, :func:`closest_context`)."""
        kept = self.decisions if kept is None else kept
        geometries = geometries or [(self.neighbours, self.scale)]
        return closest_context([kept_set_context(neighbours, scale, kept, rows) for neighbours, scale in geometries])

    def states(self, rows: torch.Tensor, features: torch.Tensor | None = None, kept: torch.Tensor | None = None,
               geometries: list[Geometry] | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """The agent's states of ``rows``: their features (default: the bank's), with the kept-set context
        (``context`` when the caller already read it) when the configuration carries it."""
        features = self.bank[rows].float() if features is None else features.detach().to(self.bank.device, torch.float32)
        if not self._agent().config.set_state:
            return features
        context = self.context(rows, kept, geometries) if context is None else context  # read on the CPU, from the candidate lists
        return torch.cat([features, context.to(features.device)], 1)

    def readout(self, geometries: list[Geometry] | None, *, passes: int, chunk: int, seed: int
                ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """The agent's own decision, taken in order: ``passes`` sweeps in seeded random order, ``chunk``
        samples at a time, each decided by the deterministic policy against the kept set as the earlier
        decisions left it (so of two twins the later sees the earlier), read in ``geometries`` (None: the
        bank's; several: a kept neighbour close in any one counts).

        Another geometry than the training's (the eval-mode features, the input) moves the kept share, so the
        ratio price ν is re-set for the read-out as it is during training: bracketed and bisected until
        the sweeps keep a share within half the band of the ratio (at most ``CALIBRATION_SWEEPS``
        read-outs). Returns (kept mask, keep scores against that final kept set, a record: the share
        the first read-out kept, the price shift, the read-outs taken)."""
        agent, n = self._agent(), len(self.labels)
        if not agent.config.set_state:  # no context: order changes nothing
            scores = self.final_scores()
            share = float((scores >= 0.5).float().mean())
            return scores >= 0.5, scores, {"first_share": share, "price_shift": 0.0, "readouts": 1}

        def sweep() -> tuple[torch.Tensor, float]:
            kept = self.decisions.clone()
            generator = torch.Generator().manual_seed(seed + 11)
            for _ in range(passes):
                for rows in torch.randperm(n, generator=generator).split(chunk):
                    kept[rows] = (agent.keep_scores(self.states(rows, kept=kept, geometries=geometries)) >= 0.5).cpu()
            return kept, float(kept.float().mean())

        base = agent.multiplier
        kept, share = sweep()
        record = {"first_share": share, "price_shift": 0.0, "readouts": 1}
        if agent.config.ratio_control != "penalty":  # the penalty has no price in the policy to move
            too_many = too_few = None  # price shifts seen keeping too many / too few
            shift, step = 0.0, agent.config.temperature
            while abs(share - self.ratio) > BAND / 2 and record["readouts"] < CALIBRATION_SWEEPS:
                if share > self.ratio:  # a higher price keeps fewer
                    too_many = shift
                    shift = shift + step if too_few is None else (shift + too_few) / 2
                else:
                    too_few = shift
                    shift = shift - step if too_many is None else (shift + too_many) / 2
                if too_many is None or too_few is None:
                    step *= 2
                agent.multiplier = base + shift
                kept, share = sweep()
                record.update(price_shift=shift, readouts=record["readouts"] + 1)
        scores = agent.keep_scores(self.states(torch.arange(n), kept=kept, geometries=geometries)).cpu()
        agent.multiplier = base
        return kept, scores, record

    def _agent(self) -> SelectorAgent:
        """The agent, created when first needed (the first cover), its schedule over ``total_steps``."""
        if self.agent is None:
            steps = self.total_steps
            if steps is None and self.epochs is not None:
                steps = max(1, self.epochs - 1) * self._epoch_batches
            dims = self.bank.shape[1] + self.agent_config.context_dims
            self.agent = SelectorAgent(dims, self.ratio, self.agent_config, seed=self.seed, total_steps=steps, device=self.bank.device)
        return self.agent

    def natural_decisions(self) -> torch.Tensor:
        return self.final_scores() >= 0.5

    def final_scores(self) -> torch.Tensor:
        """The deterministic policy on the bank (the last features of every sample), against the score
        vector's kept set."""
        return self._agent().keep_scores(self.states(torch.arange(len(self.labels)))).cpu()

    def _summary(self, epoch: int, cover_seconds: float, epoch_seconds: float) -> dict[str, float]:
        steps = self._epoch_steps

        def mean(name: str) -> float:
            values = [getattr(s, name) for s in steps if not math.isnan(getattr(s, name))]
            return float(np.mean(values)) if values else math.nan

        natural = float(self.natural_decisions().float().mean()) if steps else math.nan
        return {
            "epoch": epoch + 1,
            "natural_ratio": natural,
            "delta": mean("delta"),
            "ratio_price": mean("ratio_price"),
            "reward_ratio": mean("reward_ratio"),
            "reward_cover": mean("reward_cover"),
            "actor_loss": mean("actor_loss"),
            "critic_loss": mean("critic_loss"),
            "explained_variance": mean("explained_variance"),
            "policy_std": mean("policy_std"),
            "seconds_agent": self._agent_seconds,
            "seconds_cover": cover_seconds,
            "seconds_target": max(0.0, epoch_seconds - self._agent_seconds - cover_seconds),
        }


@register_method
class RLSelector(SelectionMethod, ObservingMethod):
    name = "rl-selector"
    summary = ("RL-Selector (ICCV 2025): an actor-critic agent (A2C, trained critic) learns redundancy (ε-sample cover, set-aware) "
               "while a target network trains; the kept set is its own policy read out in order")
    inputs = ("target-training",)
    reference = "Yang, Li, Shen, Zhao. RL-Selector: Reinforcement Learning-Guided Data Selection via Redundancy Assessment. ICCV 2025."

    @dataclass
    class Params:
        recipe: str = param("cpu", "recipe of the target network: cpu (ResNet-18 w16, a few epochs), paper (w64, 200 epochs), ...", choices=RECIPES)
        epochs: int | None = param(None, "target epochs (None = the recipe's); with --features: passes of the agent over them", ge=1)
        variant: str = param("default", "agent configuration: default (measured best), paper-literal (method.md §2-3), method-9", choices=VARIANTS)
        agent: dict = param({}, "overrides of agent fields, e.g. {learning_rate: 3e-4, updates_per_step: 2} (see rlselector.agent.AgentConfig)",
                            fields=AgentConfig, example={"learning_rate": 3e-4})
        epsilon_rule: str = param("quantile", "ε per class: quantile (of intra-class distances), mean, median, nn-median", choices=EPSILON_RULES)
        epsilon_quantile: float = param(0.01, "the quantile of the 'quantile' rule", gt=0, lt=1)
        set_aware: bool = param(False, "count only neighbours the current policy keeps (Lemma 2) in the cover")
        decision: str = param("policy", "final decision: policy (the agent's own: its deterministic policy read out in seeded order, each "
                                        "sample seeing the kept set the earlier decisions left, in the ±1 % band; measured best); threshold "
                                        "(score ≥ 0.5 against the training-time kept set, in the band); sample (as many drawn from the "
                                        "stochastic policy, chance ∝ keep probability: mostly a random draw, the manifest records the share "
                                        "decided beyond chance); set-aware (same count; lowest score pruned first among covered samples)",
                             choices=DECISIONS)
        readout_features: str = param("eval+input", "where the policy decision reads the kept set around a sample: eval+input (one "
                                                    "eval-mode pass of the target without augmentation, and the images themselves "
                                                    "pooled to at most 16×16, near-copies only (readout_input_within): a kept "
                                                    "neighbour close in either counts; noisy copies on Fashion-MNIST 100 % pruned, "
                                                    "58 % with eval alone, BENCHMARKS 'Redundancy'), eval, "
                                                    "bank+input, bank "
                                                    "(the training forward's features, where augmentation keeps copies apart); with "
                                                    "--features the input is not read", choices=READOUT_FEATURES)
        readout_input_within: float | None = param(0.4, "policy decision with +input (ignored without): only images closer than "
                                                        "this share of the sample's neighbourhood scale in the images count, so "
                                                        "the images find near-copies and leave the rest to the features (σ = 8 "
                                                        "copies lie within 0.36 of it on Fashion-MNIST, 0.31 on digits; natural "
                                                        "nearest neighbours from 0.51; copies noisier than that are not seen); "
                                                        "null: every listed image counts (the default until 2026-12-02 03:45)", gt=0)
        readout_passes: int = param(2, "policy decision: sweeps over the data", ge=1)
        readout_chunk: int = param(64, "policy decision: samples decided together in a sweep", ge=1)
        decision_rounds: int = param(20, "set-aware decision: pruning rounds, each one cover pass over the kept samples", ge=1)
        random_uncovered: bool = param(False, "set-aware decision: prune the samples no kept neighbour covers in seeded random order, not by score")
        reference_size: int = param(1024, "bank rows whose decisions measure the kept share each step (all when fewer; "
                                            "1,024 not 4,096: with 2 agent updates, a third of the agent's cost per step, docs/agent-convergence.md)", ge=1)
        bank: str = param("float32", "storage of the feature bank (N × d, on the training device): float32, or float16 at half the "
                                     "bytes (the cover's degree ranking agrees at Spearman 1.0000, BENCHMARKS 'Cover at scale'; "
                                     "the agent then reads rounded features, not measured). float32 stays the default: every "
                                     "RL-Selector measurement ran it", choices=("float32", "float16"))
        batch_size: int = param(128, "minibatch of the agent with --features (the target's batch comes from the recipe)", ge=1)
        init_from: str | None = param(None, "a finished rl-selector selection directory: fine-tune it to this ratio (T-RL-Selector)",
                                      example="runs/rl-50")
        finetune_epochs: int | None = param(None, "epochs of that fine-tuning (None = 15/200 of the recipe's epochs, at least 1)", ge=1)
        finetune_lr_scale: float = param(0.1, "learning rate of that fine-tuning, as a share of the recipe's", gt=0)

    @classmethod
    def make_params(cls, **values: Any) -> "RLSelector.Params":
        """The typed parameters with ``agent`` holding every field of the resolved agent configuration:
        runs are keyed and compared by the recorded parameters, so a changed ``AgentConfig`` default
        must make a new run, never match an old one."""
        params = super().make_params(**values)
        return dataclasses.replace(params, agent=dataclasses.asdict(_agent_config(params)))

    def agent_config(self) -> AgentConfig:
        """The variant's agent configuration with the ``agent`` overrides (typed by ``make_params``)."""
        return _agent_config(self.params)

    def validate(self, ctx: SelectionContext) -> None:
        p = self.params
        self.agent_config()
        if p.random_uncovered and p.decision != "set-aware":
            raise InputError(f"rl-selector: random_uncovered orders the set-aware decision; add decision=set-aware (got {p.decision!r})")
        check_cover_inputs(self.name, ctx.dataset)
        if p.init_from is not None:
            self._checked_init(ctx)

    def _checked_init(self, ctx: SelectionContext) -> dict[str, Any]:
        """The finished run to fine-tune from, refused before any work if it does not fit this one."""
        run = Path(self.params.init_from)
        manifest_path, checkpoint = run / MANIFEST, run / "work" / TARGET_DIR / CHECKPOINT
        if not manifest_path.exists() or not checkpoint.exists():
            raise InputError(f"--init-from {run}: needs a finished rl-selector run directory ({MANIFEST} and work/{TARGET_DIR}/{CHECKPOINT})")
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("method") != self.name:
            raise InputError(f"--init-from {run}: is a {manifest.get('method')!r} selection; only rl-selector runs can be fine-tuned")
        if manifest["dataset"]["fingerprint"] != ctx.dataset.fingerprint:
            raise InputError(f"--init-from {run}: was made on dataset {manifest['dataset']['name']!r} with another fingerprint; use the same data (same --limit and seed)")
        if manifest["params"].get("recipe") != self.params.recipe:
            raise InputError(f"--init-from {run}: its target network is recipe {manifest['params'].get('recipe')!r}, not {self.params.recipe!r}; feature sizes would differ — pass --recipe {manifest['params'].get('recipe')}")
        if ctx.features is not None:
            raise InputError("--init-from fine-tunes a target network; it cannot be combined with --features")
        return manifest

    def run(self, ctx: SelectionContext) -> MethodResult:
        p = self.params
        named, recipe = target_recipe(p.recipe, p.epochs, ctx.seed)
        transfer = p.init_from is not None
        if transfer:
            epochs = p.finetune_epochs or max(1, round(named.train.epochs * 15 / 200))
            recipe = dataclasses.replace(recipe, epochs=epochs, lr=recipe.lr * p.finetune_lr_scale)
        if ctx.features is not None:
            recipe = dataclasses.replace(recipe, batch_size=p.batch_size)
        # The agent acts from the second epoch on (the first fills the bank), except on fixed features
        # or a fine-tuned run, whose bank and cover exist from the start; its schedule spans those steps.
        acting_epochs = recipe.epochs if ctx.features is not None or transfer else max(1, recipe.epochs - 1)
        per_rank = math.ceil(len(ctx.dataset) / DistributedContext.current().world_size)  # under torchrun a step is each rank's batch
        steps = acting_epochs * math.ceil(per_rank / recipe.batch_size)
        hook = self._hook(ctx, epochs=recipe.epochs, total_steps=steps)
        started = time.perf_counter()
        readout = None
        if ctx.features is not None:
            self._run_on_features(ctx, hook, recipe.epochs, recipe.batch_size)
        else:
            model = None
            if transfer:
                model, state = self._initial_state(ctx, named)
                hook.load_state_dict(state, ratio_changes=True)
            net, _ = train_target(ctx.dataset, named, recipe, workdir=ctx.workdir, resume=ctx.resume, progress=ctx.progress, hooks=[hook],
                                  model=model, factory=ctx.model, runtime=ctx.runtime)
            if p.decision == "policy" and p.readout_features.startswith("eval"):
                started_pass = time.perf_counter()
                readout, _ = forward_split(net, ctx.dataset.train, BatchTransform.for_dataset(ctx.dataset, augment=False))
                ctx.cost.decision_s = time.perf_counter() - started_pass
        result = self.decide(ctx, hook, network=target_description(named, ctx.model, recipe.epochs), readout_features=readout)
        result.info["wall_s"] = time.perf_counter() - started
        return result

    def observer(self, ctx: SelectionContext) -> SelectorHook:
        """The agent for the user's own loop: ``epochs`` (the loop's epoch count, when known) spans its
        schedule over the epochs after the first at the minibatches counted in the first."""
        if self.params.init_from is not None:
            raise InputError("rl-selector: init_from fine-tunes rlselector's own target network; in your own loop, train your model "
                             "from where you like and drop init_from")
        return self._hook(ctx, epochs=self.params.epochs, total_steps=None)

    def _hook(self, ctx: SelectionContext, *, epochs: int | None, total_steps: int | None) -> SelectorHook:
        p = self.params
        return SelectorHook(
            ctx.labels, ctx.ratio, self.agent_config(), seed=ctx.seed, epochs=epochs, total_steps=total_steps, epsilon_rule=p.epsilon_rule,
            epsilon_quantile=p.epsilon_quantile, set_aware=p.set_aware, reference_size=p.reference_size, progress=ctx.progress,
            bank_dtype=getattr(torch, p.bank),
        )

    def decide(self, ctx: SelectionContext, hook: SelectorHook, *, network: dict[str, Any] | None = None,
               readout_features: np.ndarray | None = None) -> MethodResult:
        """The final decision from the trained policy on the bank. ``network``: the target network that
        trained (model, width); None: the user's own, in their loop. ``readout_features``: the eval-mode
        features the policy decision reads the kept set from (None: the bank's)."""
        p = self.params
        if hook.bank is None:
            raise InputError("rl-selector: no minibatch was observed; feed observe() while your model trains")
        # on --features no network is trained: the agent's passes over the user's features are recorded instead
        target = None if ctx.features is not None else {**(network or {"model": "user's own", "width": None}), "epochs": len(hook.history)}
        ctx.cost.agent_s = sum(r["seconds_agent"] for r in hook.history)
        ctx.cost.cover_s = sum(r["seconds_cover"] for r in hook.history)
        ctx.cost.target_s = sum(r["seconds_target"] for r in hook.history)
        info: dict[str, Any] = {}
        started_decision = time.perf_counter()
        if p.decision == "policy":
            geometries = self._readout_geometries(ctx, hook, readout_features)
            natural_mask, final, info["readout"] = hook.readout(list(geometries.values()), passes=p.readout_passes, chunk=p.readout_chunk,
                                                                seed=ctx.seed)
            scores, natural_mask = final.double().numpy(), natural_mask.numpy()
            info["readout_features"] = "+".join(geometries)
        else:
            scores = hook.final_scores().double().numpy()
            natural_mask = scores >= 0.5
        if ctx.class_balanced:  # proportional class quotas, each filled by the highest keep scores
            kept, _ = apply_policy("keep-highest", scores, ctx.budget, ctx.rng("policy"), labels=ctx.labels, num_classes=ctx.dataset.num_classes)
            enforced = True
        else:
            kept, enforced = band_decision(scores, ctx.ratio, natural=natural_mask)
        if p.decision in ("sample", "set-aware"):
            own = kept
            kept = self._redecided(ctx, hook.bank, scores, kept)
            info["decided_beyond_chance"] = beyond_chance(own, kept, len(scores))
        if p.decision != "threshold":  # added to the eval-mode pass's seconds, when run() took one
            ctx.cost.decision_s = (ctx.cost.decision_s or 0.0) + time.perf_counter() - started_decision
        natural = float(natural_mask.mean())
        priority = lift_kept(scores, kept)
        if ctx.workdir is not None and DistributedContext.current().is_main:
            write_diagnostics(ctx.workdir.parent, hook.history, ctx.ratio)
        return MethodResult(
            scores=priority,
            indices=kept,
            raw_scores=scores,
            info={
                "natural_ratio": natural,
                "band_enforced": enforced,
                "decision": p.decision,
                "agent": dataclasses.asdict(hook.agent.config),
                "target": target,
                "agent_passes": len(hook.history),
                "transfer_from": p.init_from,
                "diagnostics": hook.history,
                **info,
            },
        )

    def _readout_geometries(self, ctx: SelectionContext, hook: SelectorHook, readout_features: np.ndarray | None) -> dict[str, Geometry]:
        """The geometries the policy decision reads the kept set in, by space: the eval-mode features when
        given (else the bank's, from the last refresh), and the input's thumbnails (cut to the images
        within ``readout_input_within`` of the scale, when set) when the parameter asks for them and the
        images are at hand (not with ``--features``, nor in a loop given labels only)."""
        geometries = {"eval": hook.geometry(torch.from_numpy(readout_features).to(hook.bank.device))} if readout_features is not None \
            else {"bank": (hook.neighbours, hook.scale)}
        if self.params.readout_features.endswith("+input") and ctx.features is None and ctx.dataset.train.has_images:
            neighbours, scale = hook.geometry(input_thumbnails(ctx.dataset.train).to(hook.bank.device))
            within = self.params.readout_input_within
            geometries["input"] = (neighbours if within is None else within_share(neighbours, scale, within), scale)
        return geometries

    def _redecided(self, ctx: SelectionContext, bank: torch.Tensor, scores: np.ndarray, kept: np.ndarray) -> np.ndarray:
        """The same number kept (per class when class-balanced) as the threshold decision, chosen again:
        by sampling the stochastic policy, or by set-aware greedy pruning on the final features with the
        keep score as the pruning order."""
        p = self.params
        threshold_mask = np.zeros(len(scores), dtype=bool)
        threshold_mask[kept] = True
        groups = [(members, int(threshold_mask[members].sum())) for members, _ in ctx.budget_groups(per_class=ctx.class_balanced)]
        groups = [(members, quota) for members, quota in groups if quota > 0]
        mask = np.zeros(len(scores), dtype=bool)
        if p.decision == "sample":
            rng = ctx.rng("decision")
            for members, quota in groups:
                mask[members[policy_sample(scores[members], quota, rng)]] = True
            return np.flatnonzero(mask)
        eps = epsilon(bank, ctx.labels, rule=p.epsilon_rule, quantile=p.epsilon_quantile, seed=ctx.seed)
        for members, quota in groups:
            round_size = max(1, math.ceil((len(members) - quota) / p.decision_rounds))
            mask[members] = greedy_set_aware_prune(
                bank[members], ctx.labels[members], eps, keep=quota, round_size=round_size, seed=ctx.seed, prune_first=scores[members],
                random_uncovered=p.random_uncovered,
            ).numpy()
        return np.flatnonzero(mask)

    def _initial_state(self, ctx: SelectionContext, named) -> tuple[torch.nn.Module, dict[str, Any]]:
        from ..train import build_for, load_checkpoint

        self._checked_init(ctx)
        state = load_checkpoint(Path(self.params.init_from) / "work" / TARGET_DIR / CHECKPOINT,
                                fix="Pass another finished run to --init-from, or rerun that selection.")
        model = build_for(ctx.dataset, ctx.model or named.model, named.width, ctx.seed)
        model.load_state_dict(state["model"])
        return model, state["hooks"][0]

    def _run_on_features(self, ctx: SelectionContext, hook: SelectorHook, epochs: int, batch_size: int) -> None:
        """The same hooks replayed over fixed features: the bank is full from the start, so the agent acts at once."""
        features = torch.from_numpy(ctx.features)
        hook.bank = features.to(hook.bank_dtype, copy=True)
        hook.refresh_cover()
        replay_features(features, ctx.labels, epochs=epochs, batch_size=batch_size, seed=ctx.seed, hooks=[hook],
                        out_dir=ctx.workdir / "agent" if ctx.workdir is not None else None, resume=ctx.resume, progress=ctx.progress)


def _agent_config(params: RLSelector.Params) -> AgentConfig:
    """``params.variant``'s agent configuration with ``params.agent`` laid over it."""
    return dataclasses.replace(VARIANTS[params.variant](), **params.agent)


def beyond_chance(own: np.ndarray, drawn: np.ndarray, n: int) -> float:
    """Share of a drawn kept set the agent decided beyond chance: (overlap with the agent's own set −
    what a random set of that size would overlap) / (1 − that), 0 = a random draw, 1 = its own set."""
    if len(drawn) == 0 or len(drawn) == n:
        return 1.0
    chance = len(own) / n
    overlap = len(np.intersect1d(own, drawn)) / len(drawn)
    return float((overlap - chance) / (1.0 - chance))


def write_diagnostics(out_dir: Path, history: list[dict[str, float]], ratio: float) -> None:
    """``diagnostics.jsonl`` (one line per epoch) and ``diagnostics.png`` (the learning curves)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_bytes(out_dir / "diagnostics.jsonl", "".join(json.dumps(r) + "\n" for r in history).encode())
    if not history:
        return
    epochs = [r["epoch"] for r in history]
    panels = [
        ("kept share (natural) vs target", [("natural_ratio", "natural")], ratio),
        ("Δ = kept − target (batch mean)", [("delta", "Δ")], 0.0),
        ("reward parts (mean)", [("reward_ratio", "ratio term"), ("reward_cover", "cover term")], None),
        ("losses", [("actor_loss", "actor"), ("critic_loss", "critic")], None),
        ("explained variance / policy spread", [("explained_variance", "explained variance"), ("policy_std", "policy std")], None),
        ("seconds per epoch", [("seconds_target", "target training"), ("seconds_cover", "cover"), ("seconds_agent", "agent")], None),
    ]
    figure, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for ax, (title, series, reference) in zip(axes.flat, panels):
        for key, label in series:
            ax.plot(epochs, [r[key] for r in history], marker="o", label=label)
        if reference is not None:
            ax.axhline(reference, color="grey", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    figure.suptitle(f"RL-Selector diagnostics (target ratio {ratio:.2f})")
    figure.tight_layout()
    atomic_write(out_dir / "diagnostics.png", lambda handle: figure.savefig(handle, format="png", dpi=90))
    plt.close(figure)
