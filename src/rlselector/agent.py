"""The RL-Selector agent: actor, critic, policy, reward and the policy-gradient update.

Yang, Li, Shen, Zhao, *RL-Selector: Reinforcement Learning-Guided Data Selection via Redundancy
Assessment*, ICCV 2025 (arXiv:2506.21037); formulas as fixed in ``docs/method.md`` §2–3, the
measurements behind every default in ``docs/agent-convergence.md``.

Each sample of a minibatch is one decision. The state is its feature vector and, by default
(``set_state``), what the kept set looks like around it (:func:`kept_set_context`: the nearest kept
same-class sample in units of the sample's neighbourhood scale, and the share of its candidates
kept nearby); without that, two near-duplicates have the same state and can only be told apart by
chance. The action keeps (1) or prunes (0) it. The reward asks for (1) a kept share at the target
ratio sr and (2) few kept samples that others already cover: ``r_i = −a_i·(Ĉ_i + price)``, where Ĉ_i
is the sample's cover rank (weighted 0.3 at ratios ≤ 0.3, where the least covered are the atypical
samples, and whole from 0.5; measured on a validation split) plus a set-aware term
(:func:`set_aware_cover`: keeping a sample whose kept twin lies close costs more; once the twin goes
it costs nothing, Lemma 2) and the *ratio price*
is what keeping one sample costs under the ratio term.

Default: **A2C** (``estimator="critic"``). Keep with probability σ((actor(s) − ν)/T); actions sampled
from that policy (8 per state); a critic V(s) trained on the TD target r + γ·V(s′) (γ = 0 measured
best: each decision is scored by its own reward) gives the advantage of the actor's gradient (Eq. 8–9),
with an entropy bonus of weight T. The ratio price ν is a Lagrange multiplier of the ratio
constraint; it enters the policy's logit as well as the reward, because the maximum-entropy optimum
of that reward is σ((−Ĉ − ν)/T). Each step ν moves part of the way to the value at which the
deterministic decisions on a reference sample of the data keep exactly the share sr (a Newton-type
dual step). The deterministic decisions come from a Polyak average of the actor.
``AgentConfig.no_critic()`` is the ablation without a critic (the exact expectation over both
actions: the round-1 default).

``AgentConfig.paper_literal()`` gives the paper read literally: clipped Gaussian score, TD(0) A2C with
γ = 0.99 bootstrapping on the next minibatch, ratio penalty from the stored score vector. It does not
converge (``docs/method.md`` §9) and is kept for comparison.

The module holds no training loop: the caller computes the cover once per epoch and calls
:meth:`SelectorAgent.step` once per minibatch.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from .cover import Cover, Neighbours, redundancy_rank
from .errors import InputError
from .train.distributed import DistributedContext

log = logging.getLogger(__name__)

PolicyFamily = Literal["bernoulli", "gaussian-literal"]
Estimator = Literal["expected", "critic"]
RatioControl = Literal["quantile-tracking", "dual-ascent", "penalty"]
RatioFeedback = Literal["reference", "batch-decisions", "batch-actions", "scores"]
CoverSignal = Literal["rank", "centred", "minmax"]

LOW_RATIO_BAND = (0.3, 0.5)
"""Ratios between which the weight of Ĉ moves linearly from ``low_ratio_cover_weight`` to ``cover_weight``
(measured at 0.3 and at 0.5–0.9 on the validation split; between the two, interpolated, not measured)."""


@dataclass
class AgentConfig:
    """Every hyperparameter of the agent, one line each. Defaults: the measured best (see docs)."""

    policy: PolicyFamily = "bernoulli"
    """Bernoulli keep/prune, or the paper-literal clipped Gaussian score (needs ``estimator="critic"``)."""
    estimator: Estimator = "critic"
    """Policy gradient: sampled actions with the advantage from a critic V(s) trained on the TD target
    (A2C, Eq. 8–9), or the exact expectation over both actions with no critic (Bernoulli only; the
    "no critic" ablation)."""
    action_samples: int = 8
    """Critic estimator: actions sampled per state; their losses are averaged (lower variance)."""
    hidden_sizes: tuple[int, int] = (512, 256)
    """Widths of the two hidden layers of actor and critic (paper Table 6: d→512→256→1)."""
    learning_rate: float = 1e-3
    """Adam learning rate of actor and critic."""
    final_lr_fraction: float = 0.1
    """Cosine decay of the learning rate to this fraction at the last step (when the caller gives the
    number of steps); a quiet end keeps the final decisions from jittering."""
    weight_decay: float = 0.0
    """Adam L2 weight decay. At 5e-4 it swamps the small policy gradients and nothing is learned."""
    adam_eps: float = 1e-5
    """Adam epsilon."""
    gamma: float = 0.0
    """Critic estimator: discount of the TD target r + γ·V(s'), s' the next minibatch (whose kept-set
    context this batch's actions change); 0 = each decision a one-step bandit."""
    updates_per_step: int = 2
    """Agent gradient steps per minibatch on the same batch. 2, not 4 (with RL-Selector's 1,024
    reference states): a third of the agent's cost per step, the same duplicates on Fashion-MNIST,
    agreement within the seed spread (docs/agent-convergence.md)."""
    normalize_advantage: bool = False
    """Critic estimator: divide the advantage by its batch std (breaks the entropy weight's scale)."""
    temperature: float = 0.25
    """Bernoulli: keep probability σ((actor − ν)/T); the actor then works in reward units."""
    entropy_coef: float = 0.25
    """Weight of the policy-entropy bonus. Equal to ``temperature`` the optimum is σ((−Ĉ − ν)/T)."""
    ratio_control: RatioControl = "quantile-tracking"
    """Ratio price: a Lagrange multiplier ν moved towards the value that would give the measured
    decisions the share sr (a Newton-type dual step), ν by plain dual ascent, or the paper's
    penalty λ·Δ̂."""
    tracking_rate: float = 0.3
    """Quantile tracking: ν ← ν + rate·(ν* − ν), ν* the actor output at the sr-quantile of the
    measured states; smaller averages more measurements."""
    multiplier_rate: float = 0.2
    """Dual ascent: ν ← ν + rate·Δ (raw Δ, so noise does not bias the ratio)."""
    ratio_coef: float = 0.3
    """Penalty control: λ in price = λ·Δ̂."""
    ratio_feedback: RatioFeedback = "reference"
    """Kept share Δ is measured on: deterministic decisions on the caller's reference states, on the
    batch, the batch's sampled actions, or the caller's dataset-wide score vector (paper-literal)."""
    cover_signal: CoverSignal = "rank"
    """Ĉ: redundancy rank − sr; C − its sr-quantile over its range; or min-max C (Eq. 7)."""
    decision_ema: float = 0.99
    """Deterministic decisions use a Polyak average of the actor with this decay (warm-up
    (1 + t)/(10 + t) while smaller); 0 = the actor itself."""
    normalize_states: bool = True
    """Standardise states with running per-dimension mean and variance (features of any scale)."""
    initial_log_std: float = math.log(0.2)
    """Gaussian policy: starting value of the learned state-independent log standard deviation."""
    set_state: bool = True
    """The state carries the kept set around the sample (:func:`kept_set_context`): without it two
    near-duplicates have the same state and the same keep probability."""
    cover_weight: float = 1.0
    """Weight of the ε-cover rank Ĉ in the reward at ratios ≥ 0.5: keeping a sample costs
    ``weight · Ĉ`` (0: only the ratio price and the set-aware term decide)."""
    low_ratio_cover_weight: float | None = 0.3
    """The weight at ratios ≤ 0.3, linear in the ratio up to ``cover_weight`` at 0.5 (None: ``cover_weight``
    at every ratio): at a low ratio the pull towards the least covered keeps the atypical samples."""
    set_weight: float = 2.0
    """Set-aware reward: keeping a sample whose nearest kept same-class neighbour lies at a share x of
    its own neighbourhood scale costs ``set_weight · (1 − x)`` more (x ≥ 1: nothing)."""
    neighbours: int = 16
    """Candidate list per sample (its nearest same-class samples) the kept-set context is read from."""
    scale_neighbour: int = 4
    """Neighbourhood scale of a sample: the distance to its ``scale_neighbour``-th nearest same-class
    sample (a copy lies well inside it on any dataset; a class-wide ε does not see sparse pairs)."""

    def __post_init__(self) -> None:
        self.hidden_sizes = tuple(self.hidden_sizes)
        _check_choice("policy", self.policy, ("bernoulli", "gaussian-literal"))
        _check_choice("estimator", self.estimator, ("expected", "critic"))
        _check_choice("ratio_control", self.ratio_control, ("quantile-tracking", "dual-ascent", "penalty"))
        _check_choice("ratio_feedback", self.ratio_feedback, ("reference", "batch-decisions", "batch-actions", "scores"))
        _check_choice("cover_signal", self.cover_signal, ("rank", "centred", "minmax"))
        if self.policy == "gaussian-literal" and (self.estimator != "critic" or self.ratio_control != "penalty"):
            raise InputError("AgentConfig: the Gaussian policy needs estimator='critic' and ratio_control='penalty'")
        if not 0.0 <= self.gamma <= 1.0:
            raise InputError(f"AgentConfig.gamma must lie in [0, 1], got {self.gamma}")
        if self.gamma > 0 and self.estimator != "critic":
            raise InputError("AgentConfig: gamma > 0 bootstraps on a critic; use estimator='critic'")
        if not 0.0 <= self.decision_ema < 1.0:
            raise InputError(f"AgentConfig.decision_ema must lie in [0, 1), got {self.decision_ema}")
        for name in ("updates_per_step", "action_samples"):
            if getattr(self, name) < 1:
                raise InputError(f"AgentConfig.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.temperature <= 0:
            raise InputError(f"AgentConfig.temperature must be > 0, got {self.temperature}")
        if not 1 <= self.scale_neighbour <= self.neighbours:
            raise InputError(f"AgentConfig.scale_neighbour must lie in [1, neighbours={self.neighbours}], got {self.scale_neighbour}")
        for name in ("cover_weight", "low_ratio_cover_weight", "set_weight"):
            if (getattr(self, name) or 0.0) < 0:
                raise InputError(f"AgentConfig.{name} must be ≥ 0, got {getattr(self, name)}")

    def cover_weight_at(self, ratio: float) -> float:
        """The weight of Ĉ in the reward at ``ratio`` (``cover_weight``, ``low_ratio_cover_weight``)."""
        if self.low_ratio_cover_weight is None:
            return self.cover_weight
        low, high = LOW_RATIO_BAND
        share = min(1.0, max(0.0, (ratio - low) / (high - low)))
        return self.low_ratio_cover_weight + share * (self.cover_weight - self.low_ratio_cover_weight)

    @classmethod
    def paper_literal(cls, **overrides: Any) -> "AgentConfig":
        """The paper read literally (``docs/method.md`` §2–3): Gaussian policy, one sampled action per
        state, TD(0) A2C with γ = 0.99,
        Adam lr 3e-4 and weight decay 5e-4, one update per step, penalty λ = 1 from the stored score
        vector, min-max C, raw states, no entropy, no averaging, constant learning rate."""
        literal = cls(
            policy="gaussian-literal",
            estimator="critic",
            action_samples=1,
            learning_rate=3e-4,
            final_lr_fraction=1.0,
            weight_decay=5e-4,
            gamma=0.99,
            updates_per_step=1,
            entropy_coef=0.0,
            ratio_control="penalty",
            ratio_coef=1.0,
            ratio_feedback="scores",
            cover_signal="minmax",
            decision_ema=0.0,
            normalize_states=False,
            set_state=False,
            low_ratio_cover_weight=None,
            set_weight=0.0,
        )
        return replace(literal, **overrides)

    @classmethod
    def method_9(cls, **overrides: Any) -> "AgentConfig":
        """The configuration ``docs/method.md`` §9 found converging at 0.3 and 0.5: Bernoulli, A2C with
        r − V(s) normalised by its std, 4 updates at lr 1e-3, penalty 0.3·Δ̂ on the batch's actions,
        C centred at its sr-quantile."""
        found = cls(
            estimator="critic",
            final_lr_fraction=1.0,
            weight_decay=5e-4,
            normalize_advantage=True,
            temperature=1.0,
            entropy_coef=0.0,
            ratio_control="penalty",
            ratio_coef=0.3,
            ratio_feedback="batch-actions",
            cover_signal="centred",
            decision_ema=0.0,
            action_samples=1,
            set_state=False,
            low_ratio_cover_weight=None,
            set_weight=0.0,
        )
        return replace(found, **overrides)

    @classmethod
    def no_critic(cls, **overrides: Any) -> "AgentConfig":
        """The ablation without a critic: the exact expectation of the reward over both actions (the
        round-1 default)."""
        return replace(cls(estimator="expected", action_samples=1), **overrides)

    @property
    def context_dims(self) -> int:
        """State entries beyond the features: the kept-set context, when the state carries it."""
        return len(CONTEXT_FEATURES) if self.set_state else 0


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InputError(f"AgentConfig.{name}: unknown {value!r}; use one of {', '.join(map(repr, allowed))}")


# --- reward: pure functions ----------------------------------------------------------------------------


def ratio_discrepancy(kept_fraction: float, target_ratio: float) -> float:
    """Eq. 5: Δ = kept share − sr ∈ [−sr, 1 − sr]."""
    return float(kept_fraction) - float(target_ratio)


def rescale_discrepancy(delta: float, target_ratio: float) -> float:
    """Δ̂ = α·Δ if Δ ≥ 0 else β·Δ, α = 1/(1 − sr), β = 1/sr: both directions mapped onto [−1, 1]."""
    if delta >= 0:
        return delta / (1.0 - target_ratio) if target_ratio < 1.0 else 0.0
    return delta / target_ratio


def normalised_cover(result: Cover, target_ratio: float, signal: CoverSignal) -> torch.Tensor:
    """Ĉ (float32) from a cover pass; for ``rank`` and ``centred`` negative means keep-worthy at sr.

    - ``rank``: redundancy rank (degree, then nearest-neighbour closeness) minus sr ∈ [−sr, 1 − sr):
      uniform, untied, zero exactly at the boundary of the target ratio.
    - ``centred``: (C − q_sr(C)) / (max C − min C) (``method.md`` §9).
    - ``minmax``: (C − min C) / (max C − min C) ∈ [0, 1] (``method.md`` Eq. 7).
    """
    if signal == "rank":
        return (redundancy_rank(result) - target_ratio).float()
    degree = result.degree
    spread = float(degree.max() - degree.min()) or 1.0
    if signal == "centred":
        return ((degree - torch.quantile(degree, target_ratio)) / spread).float()
    return ((degree - degree.min()) / spread).float()


def reward_parts(
    actions: torch.Tensor, cover_hat: torch.Tensor, ratio_price: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(r_ratio, r_cover) per sample: −a_i·price and −a_i·Ĉ_i (Eq. 7).

    ``ratio_price`` is what keeping one sample costs under the ratio term: λ·Δ̂ for the paper's penalty
    (> 0 when too many are kept, < 0 when too few), or the Lagrange multiplier ν. Both parts scale with
    the sample's own action, so each carries a per-sample policy gradient after any baseline.
    """
    return -ratio_price * actions, -actions * cover_hat


def reward(actions: torch.Tensor, cover_hat: torch.Tensor, ratio_price: float) -> torch.Tensor:
    """r_i = −a_i·(Ĉ_i + price)."""
    ratio_part, cover_part = reward_parts(actions, cover_hat, ratio_price)
    return ratio_part + cover_part


# --- the kept set around a sample -------------------------------------------------------------------

CONTEXT_FEATURES = ("nearest kept neighbour / scale (capped at 2)", "kept neighbours within the scale / list length")
"""What the state adds to the features when ``AgentConfig.set_state`` (read from the candidate lists)."""

NEAREST_CAP = 2.0
"""Relative distance reported when no kept candidate lies nearer (nothing kept around the sample)."""


def neighbourhood_scale(neighbours: Neighbours, config: "AgentConfig") -> torch.Tensor:
    """(N,) float64: each sample's distance to its ``scale_neighbour``-th nearest same-class sample
    (the farthest listed one in a class with fewer samples; tiny where that is 0)."""
    distance = neighbours.distance.double()
    column = min(config.scale_neighbour, distance.shape[1]) - 1
    finite = torch.where(torch.isfinite(distance), distance, torch.zeros_like(distance))
    scale = torch.where(torch.isfinite(distance[:, column]), distance[:, column], finite.max(1).values)
    return scale.clamp_min(1e-12)


def kept_set_context(neighbours: Neighbours, scale: torch.Tensor, kept: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(B, 2) float32 context of ``rows``: the nearest kept candidate's distance in units of the row's
    neighbourhood scale (capped at ``NEAREST_CAP``), and the share of candidates kept within that scale."""
    index = neighbours.index[rows]
    relative = neighbours.distance[rows].double() / scale[rows, None]
    is_kept = (index >= 0) & kept[index.clamp_min(0)]
    nearest = torch.where(is_kept, relative, torch.full_like(relative, math.inf)).min(1).values.clamp(max=NEAREST_CAP)
    within = (is_kept & (relative <= 1.0)).sum(1).double() / index.shape[1]
    return torch.stack([nearest, within], 1).float()


def within_share(neighbours: Neighbours, scale: torch.Tensor, share: float) -> Neighbours:
    """The candidate lists cut to the neighbours closer than ``share`` of each row's neighbourhood scale
    (the others become −1 / inf, as absent ones are): below 1, a space that counts only near-copies."""
    close = neighbours.distance.double() < share * scale[:, None]
    return Neighbours(torch.where(close, neighbours.index, torch.full_like(neighbours.index, -1)),
                      torch.where(close, neighbours.distance, torch.full_like(neighbours.distance, math.inf)))


def closest_context(contexts: list[torch.Tensor]) -> torch.Tensor:
    """The kept-set context read in several spaces at once (the eval-mode features and the input, say):
    a kept neighbour close in any one covers the sample, so the nearest is the smallest of the spaces'
    relative distances and the share within scale the largest. One space: its context unchanged."""
    if len(contexts) == 1:
        return contexts[0]
    stacked = torch.stack(contexts)
    return torch.stack([stacked[:, :, 0].min(0).values, stacked[:, :, 1].max(0).values], 1)


def set_aware_cover(static_hat: torch.Tensor, context: torch.Tensor | None, config: "AgentConfig", ratio: float) -> torch.Tensor:
    """What keeping each sample costs beyond the ratio price at ``ratio``: ``w · Ĉ`` (w the config's
    :meth:`~AgentConfig.cover_weight_at`) plus the set-aware term ``set_weight · max(0, 1 − nearest
    kept / scale)`` (``context`` needed when ``set_weight > 0``). A sample a kept twin covers costs up
    to ``set_weight`` more to keep; once the twin goes, it costs nothing extra, so of two samples that
    cover each other one stays (Lemma 2)."""
    priced = config.cover_weight_at(ratio) * static_hat
    if config.set_weight == 0:
        return priced
    return priced + config.set_weight * (1.0 - context[:, 0]).clamp_min(0.0)


# --- networks and state normalisation -------------------------------------------------------------------


def _mlp(in_features: int, hidden_sizes: tuple[int, int]) -> nn.Sequential:
    first, second = hidden_sizes
    return nn.Sequential(
        nn.Linear(in_features, first), nn.ReLU(), nn.Linear(first, second), nn.ReLU(), nn.Linear(second, 1)
    )


class RunningMeanStd:
    """Per-dimension running mean and variance over every state seen (parallel-variance update)."""

    CLIP = 10.0
    """Standardised states are clipped to ±CLIP so one outlier cannot saturate the networks."""

    def __init__(self, dim: int, device: torch.device | str = "cpu"):
        self.mean = torch.zeros(dim, dtype=torch.float64, device=device)
        self.var = torch.ones(dim, dtype=torch.float64, device=device)
        self.count = 0

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(self.mean.device, torch.float64)
        batch_mean, batch_var, batch_count = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        total = self.count + batch_count
        shift = batch_mean - self.mean
        self.mean = self.mean + shift * batch_count / total
        self.var = (self.var * self.count + batch_var * batch_count + shift**2 * self.count * batch_count / total) / total
        self.count = total

    def normalise(self, states: torch.Tensor) -> torch.Tensor:
        standardised = (states.double() - self.mean) / (self.var + 1e-8).sqrt()
        return standardised.clamp(-self.CLIP, self.CLIP).float()

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.clone(), "var": self.var.clone(), "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.mean.device
        self.mean, self.var, self.count = state["mean"].to(device, copy=True), state["var"].to(device, copy=True), int(state["count"])


@dataclass
class StepStats:
    """Diagnostics of one :meth:`SelectorAgent.step` (batch means; losses of the last agent update)."""

    kept_fraction: float
    """Kept share the ratio feedback measured."""
    delta: float
    """Δ = kept share − sr."""
    ratio_price: float
    """Cost of keeping one sample under the ratio term (ν, or λ·Δ̂)."""
    reward_ratio: float
    """Mean ratio part of the reward of the sampled actions."""
    reward_cover: float
    """Mean cover part of the reward of the sampled actions."""
    actor_loss: float
    critic_loss: float
    """NaN without a critic (``estimator="expected"``)."""
    explained_variance: float
    """1 − Var(target − V) / Var(target) of the critic (1 = perfect, ≤ 0 = useless); NaN without one."""
    entropy: float
    policy_std: float
    """Gaussian: σ. Bernoulli: mean √(p(1 − p)) over the batch."""
    learning_rate: float


class SelectorAgent:
    """Actor and critic with their optimisers, sampling from a private seeded generator.

    Call :meth:`step` once per minibatch; :meth:`finish` after the last one (the pending TD update when
    γ > 0). :meth:`keep_scores` is the deterministic policy (≥ 0.5 = keep). ``total_steps`` (minibatches
    in the whole run) enables the cosine learning-rate decay. :meth:`state_dict` holds everything a run
    needs to resume bit-exactly.

    ``device``: where the networks, the state statistics and every update run (the training's GPU,
    in float32). The actions are drawn on the CPU from the private generator and copied there, so a
    run draws the same actions wherever its networks live and resumes on any device (:meth:`to`).
    """

    def __init__(
        self,
        state_dim: int,
        target_ratio: float,
        config: AgentConfig | None = None,
        *,
        seed: int = 0,
        total_steps: int | None = None,
        device: torch.device | str = "cpu",
    ):
        if not 0.0 < target_ratio <= 1.0:
            raise InputError(f"SelectorAgent: target_ratio must lie in (0, 1], got {target_ratio}")
        self.config = config if config is not None else AgentConfig()
        self.target_ratio = float(target_ratio)
        self.state_dim = int(state_dim)
        self.total_steps = total_steps
        with torch.random.fork_rng(devices=[]):  # build the networks from the seed, leave the global RNG alone
            torch.manual_seed(seed)
            self.actor = _mlp(self.state_dim, self.config.hidden_sizes)
            self.critic = _mlp(self.state_dim, self.config.hidden_sizes)
        self.device = torch.device(device)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.decision_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.log_std = nn.Parameter(torch.tensor(float(self.config.initial_log_std), device=self.device))
        actor_parameters = list(self.actor.parameters())
        if self.config.policy == "gaussian-literal":
            actor_parameters.append(self.log_std)
        self.actor_optimizer = self._adam(actor_parameters)
        self.critic_optimizer = self._adam(self.critic.parameters())
        self.state_stats = RunningMeanStd(self.state_dim, self.device)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.multiplier = 0.0
        self.steps_done = 0
        self._pending: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def _adam(self, parameters) -> torch.optim.Adam:
        c = self.config
        return torch.optim.Adam(parameters, lr=c.learning_rate, weight_decay=c.weight_decay, eps=c.adam_eps)

    # --- policy ---

    def keep_scores(self, states: torch.Tensor) -> torch.Tensor:
        """Deterministic score in [0, 1] (Bernoulli: keep probability; Gaussian: mean); ≥ 0.5 = keep."""
        with torch.no_grad():
            return self._keep_probability(self.decision_actor, self._prepared(states))

    def _keep_probability(self, network: nn.Module, states: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self._logits(network, states))

    def _logits(self, network: nn.Module, states: torch.Tensor) -> torch.Tensor:
        return self._logits_of(network(states).squeeze(1))

    def _logits_of(self, output: torch.Tensor) -> torch.Tensor:
        if self.config.policy == "gaussian-literal":
            return output
        price = 0.0 if self.config.ratio_control == "penalty" else self.multiplier
        return (output - price) / self.config.temperature

    def _prepared(self, states: torch.Tensor) -> torch.Tensor:
        states = states.detach().to(self.device, torch.float32)
        return self.state_stats.normalise(states) if self.config.normalize_states else states

    def _sample(self, states: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` samples per state: (raw sample the log-probability is taken of, action in [0, 1])."""
        mean = self._keep_probability(self.actor, states).expand(count, -1)
        if self.config.policy == "bernoulli":
            sample = torch.bernoulli(mean.cpu(), generator=self.generator).to(self.device)
            return sample, sample
        noise = torch.randn(mean.shape, generator=self.generator).to(self.device)
        sample = mean + self.log_std.exp() * noise
        return sample, sample.clamp(0.0, 1.0)

    def _log_prob_entropy_spread(self, states: torch.Tensor, raw: torch.Tensor):
        """log π(raw | s) (shape of ``raw``), the entropy and the spread per state, with gradients."""
        logits = self._logits(self.actor, states)
        if self.config.policy == "bernoulli":
            log_prob = -F.binary_cross_entropy_with_logits(logits.expand_as(raw), raw, reduction="none")
            p = torch.sigmoid(logits)
            return log_prob, _bernoulli_entropy(logits), (p * (1 - p)).sqrt()
        distribution = torch.distributions.Normal(torch.sigmoid(logits), self.log_std.exp())
        spread = self.log_std.exp().expand_as(logits)
        return distribution.log_prob(raw), distribution.entropy(), spread

    # --- one minibatch ---

    def step(
        self,
        states: torch.Tensor,
        cover_hat: torch.Tensor,
        *,
        reference_states: torch.Tensor | None = None,
        kept_fraction: float | None = None,
    ) -> tuple[torch.Tensor, StepStats]:
        """Act on a minibatch, price the actions (§3) and update; returns (actions, stats).

        ``reference_states`` (required by ``ratio_feedback="reference"``): a sample of the data whose
        deterministic decisions measure the kept share. ``kept_fraction`` (required by ``"scores"``):
        the share the caller measured on its score vector. With γ > 0 the update of this batch waits
        for the next batch's states (its s'), as in ``docs/method.md`` §2, and the losses reported are
        the previous batch's.
        """
        c = self.config
        if c.normalize_states:
            self.state_stats.update(states.detach())
        states = self._prepared(states)
        cover_hat = cover_hat.detach().to(self.device, torch.float32)
        samples = c.action_samples if c.estimator == "critic" else 1
        if c.ratio_feedback == "batch-actions":  # the share of the very actions being rewarded
            with torch.no_grad():
                raw, actions = self._sample(states, samples)
            share, quantile_price = float(actions[0].mean()), math.nan
        else:
            share, quantile_price = self._measure_ratio(states, reference_states, kept_fraction)
        delta = ratio_discrepancy(share, self.target_ratio)
        if c.ratio_control == "quantile-tracking":
            self.multiplier += c.tracking_rate * (quantile_price - self.multiplier)
        elif c.ratio_control == "dual-ascent":
            self.multiplier += c.multiplier_rate * delta
        price = self.multiplier if c.ratio_control != "penalty" else c.ratio_coef * rescale_discrepancy(delta, self.target_ratio)
        with torch.no_grad():
            if c.ratio_feedback != "batch-actions":  # sampled after the multiplier moved: it enters the policy
                raw, actions = self._sample(states, samples)
            ratio_part, cover_part = reward_parts(actions, cover_hat, price)
        for optimizer in (self.actor_optimizer, self.critic_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = c.learning_rate * self._schedule()
        if c.estimator == "expected":
            losses = self._expected_update(states, cover_hat, price)
        elif c.gamma == 0.0:
            losses = self._critic_update(states, raw, ratio_part + cover_part, next_value=0.0)
        else:
            losses = self._deferred_critic_update(states, raw, ratio_part + cover_part)
        self._update_decision_actor()
        self.steps_done += 1
        stats = StepStats(
            kept_fraction=share,
            delta=delta,
            ratio_price=price,
            reward_ratio=float(ratio_part.mean()),
            reward_cover=float(cover_part.mean()),
            learning_rate=self.actor_optimizer.param_groups[0]["lr"],
            **losses,
        )
        return actions[0], stats

    def _measure_ratio(
        self, states: torch.Tensor, reference_states: torch.Tensor | None, kept_fraction: float | None
    ) -> tuple[float, float]:
        """(kept share, ν*): the share of keep decisions, and the actor output at which exactly a share
        sr of the measured states would be kept (NaN where the feedback has no outputs to rank)."""
        feedback = self.config.ratio_feedback
        if feedback == "scores":
            if kept_fraction is None:
                raise InputError("SelectorAgent.step: ratio_feedback='scores' needs the caller's kept_fraction")
            return float(kept_fraction), math.nan
        if feedback == "reference":
            if reference_states is None:
                raise InputError("SelectorAgent.step: ratio_feedback='reference' needs reference_states")
            states = self._prepared(reference_states)
        with torch.no_grad():
            outputs = self.decision_actor(states).squeeze(1)
            share = float((self._logits_of(outputs) >= 0).float().mean())
        kept = min(outputs.numel(), max(1, round(self.target_ratio * outputs.numel())))
        return share, float(torch.kthvalue(outputs, outputs.numel() - kept + 1).values)

    def align_ranks(self, ranks: DistributedContext) -> bool:
        """Under torchrun every rank runs this agent on the same gathered inputs, so the copies stay
        equal; should rounding make them drift (ranks on different hardware), rank 0's networks, state
        statistics and price are copied to every rank. Returns whether they had drifted."""
        if not ranks.enabled:
            return False
        networks = [*self.actor.parameters(), *self.critic.parameters(), *self.decision_actor.parameters(), self.log_std]
        values = [*networks, self.state_stats.mean, self.state_stats.var, torch.tensor([self.multiplier], dtype=torch.float64)]
        checksum = torch.stack([value.detach().double().sum().cpu() for value in values])
        if ranks.agree(checksum):
            return False
        log.warning("rl-selector: the agents of the ranks drifted apart; rank 0's is copied to every rank")
        with torch.no_grad():
            ranks.broadcast_(*networks, self.state_stats.mean, self.state_stats.var)
        multiplier = torch.tensor([self.multiplier], dtype=torch.float64)
        ranks.broadcast_(multiplier)
        self.multiplier = float(multiplier)
        return True

    def finish(self) -> dict[str, float] | None:
        """Run the pending update of the last minibatch, bootstrapping with V = 0 (end of the run)."""
        if self._pending is None:
            return None
        pending, self._pending = self._pending, None
        return self._critic_update(*pending, next_value=0.0)

    # --- updates ---

    def _expected_update(self, states: torch.Tensor, cover_hat: torch.Tensor, price: float) -> dict[str, float]:
        """Exact policy gradient of E_a[r] + c·H for the Bernoulli policy: r(keep) = −(Ĉ + price), r(prune) = 0."""
        keep_reward = reward(torch.ones_like(cover_hat), cover_hat, price)
        for _ in range(self.config.updates_per_step):
            logits = self._logits(self.actor, states)
            entropy = _bernoulli_entropy(logits)
            p = torch.sigmoid(logits)
            actor_loss = -(p * keep_reward).mean() - self.config.entropy_coef * entropy.mean()
            self._descend(self.actor_optimizer, actor_loss)
        return dict(
            actor_loss=float(actor_loss.detach()),
            critic_loss=math.nan,
            explained_variance=math.nan,
            entropy=float(entropy.detach().mean()),
            policy_std=float((p * (1 - p)).sqrt().detach().mean()),
        )

    def _deferred_critic_update(self, states: torch.Tensor, raw: torch.Tensor, rewards: torch.Tensor) -> dict[str, float]:
        previous, self._pending = self._pending, (states, raw, rewards)
        if previous is None:
            return dict(actor_loss=math.nan, critic_loss=math.nan, explained_variance=math.nan, entropy=math.nan, policy_std=math.nan)
        with torch.no_grad():
            next_value = float(self.critic(states).mean())  # V(s_{t+1}): the next minibatch as a whole
        return self._critic_update(*previous, next_value=next_value)

    def _critic_update(self, states: torch.Tensor, raw: torch.Tensor, rewards: torch.Tensor, next_value: float) -> dict[str, float]:
        """A2C: Eq. 8 actor loss −log π(a|s)·A (A detached, mean over samples and batch), Eq. 9 critic
        loss A² with the TD target r + γ·V(s') detached; ``raw`` and ``rewards`` are (samples, batch)."""
        c = self.config
        target = rewards + c.gamma * next_value
        for _ in range(c.updates_per_step):
            values = self.critic(states).squeeze(1)
            advantage = (target - values).detach()
            if c.normalize_advantage:
                advantage = advantage / (advantage.std(unbiased=False) + 1e-8)
            log_prob, entropy, spread = self._log_prob_entropy_spread(states, raw)
            actor_loss = -(log_prob * advantage).mean() - c.entropy_coef * entropy.mean()
            critic_loss = (target - values).pow(2).mean()
            self._descend(self.actor_optimizer, actor_loss)
            self._descend(self.critic_optimizer, critic_loss)
        variance = float(target.var(unbiased=False))
        residual = float((target - values.detach()).var(unbiased=False))
        return dict(
            actor_loss=float(actor_loss.detach()),
            critic_loss=float(critic_loss.detach()),
            explained_variance=1.0 - residual / variance if variance > 0 else math.nan,
            entropy=float(entropy.detach().mean()),
            policy_std=float(spread.detach().mean()),
        )

    @staticmethod
    def _descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def _schedule(self) -> float:
        """Cosine from 1 to ``final_lr_fraction`` over ``total_steps``; 1 when the caller gave none."""
        if self.total_steps is None:
            return 1.0
        progress = min(1.0, self.steps_done / max(1, self.total_steps - 1))
        floor = self.config.final_lr_fraction
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def _update_decision_actor(self) -> None:
        # Warm-up (1 + t)/(10 + t): early averages follow the actor instead of its random start.
        decay = min(self.config.decision_ema, (1.0 + self.steps_done) / (10.0 + self.steps_done))
        with torch.no_grad():
            for averaged, current in zip(self.decision_actor.parameters(), self.actor.parameters()):
                averaged.mul_(decay).add_(current, alpha=1.0 - decay)

    # --- checkpointing ---

    def state_dict(self) -> dict[str, Any]:
        return {
            "config": asdict(self.config),
            "target_ratio": self.target_ratio,
            "state_dim": self.state_dim,
            "actor": self.actor.state_dict(),
            "decision_actor": self.decision_actor.state_dict(),
            "critic": self.critic.state_dict(),
            "log_std": self.log_std.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "state_stats": self.state_stats.state_dict(),
            "generator": self.generator.get_state(),
            "multiplier": self.multiplier,
            "steps_done": self.steps_done,
            "pending": self._pending,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["state_dim"] != self.state_dim or state["target_ratio"] != self.target_ratio:
            raise InputError(
                "SelectorAgent.load_state_dict: checkpoint is for state_dim "
                f"{state['state_dim']} and ratio {state['target_ratio']}, this agent for {self.state_dim} and "
                f"{self.target_ratio}; resume with the same features and ratio"
            )
        self.actor.load_state_dict(state["actor"])
        self.decision_actor.load_state_dict(state["decision_actor"])
        self.critic.load_state_dict(state["critic"])
        with torch.no_grad():
            self.log_std.copy_(state["log_std"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.state_stats.load_state_dict(state["state_stats"])
        self.generator.set_state(state["generator"])
        self.multiplier = float(state["multiplier"])
        self.steps_done = int(state["steps_done"])
        pending = state["pending"]
        self._pending = None if pending is None else tuple(t.to(self.device) for t in pending)

    def to(self, device: torch.device | str) -> "SelectorAgent":
        """Move the networks, their optimisers' state, the state statistics and a pending update to
        ``device`` (a run resumed where its checkpoint was not written, or fed from another device)."""
        state = self.state_dict()
        self.device = torch.device(device)
        for network in (self.actor, self.critic, self.decision_actor):
            network.to(self.device)
        self.log_std.data = self.log_std.data.to(self.device)
        self.state_stats = RunningMeanStd(self.state_dim, self.device)
        self.load_state_dict(state)  # the optimisers cast their state to their parameters' device
        return self


def _bernoulli_entropy(logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.sigmoid(logits), reduction="none")
