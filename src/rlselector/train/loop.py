"""The one training loop. Target networks, proxy models, the self-supervised encoder and evaluation
all train here, and hooks replay fixed features through the same epochs.

SGD with momentum (or Adam) and a cosine or multi-step schedule; a pluggable objective (cross-entropy
by default); per-minibatch hooks that see indices, logits, per-sample losses and penultimate
features; an atomic checkpoint every epoch from which ``resume=True`` continues exactly (the data
order and augmentation of an epoch depend only on ``(seed, epoch, rank)``; checkpoints hold tensors
and plain values and load with ``weights_only=True``); a progress bar with images/s and ETA; a
JSON-lines log per epoch; DistributedDataParallel under torchrun. Accuracy is the final epoch's,
never the best epoch's.

Where it runs (:mod:`.device`): ``device`` (``auto`` = CUDA where present), ``amp`` (bf16/fp16
autocast), ``channels_last``, ``compile`` and ``workers`` are arguments of :func:`train`, not of the
recipe. The model and every batch live on the device; batches are read (by DataLoader workers when
asked) into page-locked memory and copied without blocking; augmentation runs on the device. The hot
loop never waits for the device: loss and accuracy are summed there and read every
``PROGRESS_EVERY`` steps for the progress bar and once at the end of the epoch. On a GPU a resumed
run continues with the same batches and augmentation; bit-identical weights also need deterministic
kernels (``torch.use_deterministic_algorithms``), which the loop does not impose.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from ..data.base import Dataset, Split
from ..data.loader import read_batches
from ..data.transforms import BatchTransform
from ..errors import InputError
from ..io import append_jsonl, atomic_torch_save, atomic_write_bytes, atomic_write_json
from ..progress import make_progress
from .checkpoint import load_checkpoint, rng_state, set_rng_state
from .device import CompiledForward, Runtime
from .distributed import DistributedContext, gather_batch
from .evaluate import FeaturesAndLogits, evaluate
from .hooks import BatchContext, TrainHook

if TYPE_CHECKING:  # pragma: no cover
    from ..models.user import ModelFactory

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EPOCH_LOG = "log.jsonl"
RESULT = "result.json"
START_OVER = "delete it to start over, or choose another --out"
"""The fix an unreadable checkpoint's error names."""
PROGRESS_EVERY = 25
"""Steps between two readings of the running loss for the progress bar (each waits for the device)."""


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe, used for every model the project trains."""

    epochs: int = 3
    """Passes over the training set."""
    batch_size: int = 128
    """Samples per step (per process under torchrun)."""
    lr: float = 0.1
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum (Adam keeps its default betas)."""
    weight_decay: float = 5e-4
    """L2 weight decay."""
    nesterov: bool = False
    """Nesterov momentum (SGD)."""
    schedule: Literal["cosine", "multistep", "constant"] = "cosine"
    """Learning-rate schedule over epochs."""
    milestones: tuple[int, ...] = ()
    """Epochs at which the multi-step schedule multiplies the rate by ``lr_decay``."""
    lr_decay: float = 0.1
    """Factor of the multi-step schedule."""
    augment: bool = True
    """Random crop with padding and (where valid) horizontal flip."""
    seed: int = 0
    """Seeds shuffling and augmentation (and, through :func:`seed_everything`, initialisation)."""
    eval_batch_size: int = 1024
    """Batch size of no-grad evaluation passes."""
    optimizer: Literal["sgd", "adam"] = "sgd"
    """SGD (classification recipes) or Adam (the self-supervised encoder)."""
    recalibrate_bn: bool = False
    """After the last epoch, recompute every batch-norm layer's running statistics as a plain average
    over the training set without augmentation (weights unchanged; ``torch.optim.swa_utils.update_bn``;
    one forward pass). The statistics a short training leaves scatter its test accuracy: sd 4.40 →
    0.70 over evaluation seeds on the ``cpu-full`` protocol (BENCHMARKS.md, "Where the floor comes from")."""

    def identity(self) -> dict[str, Any]:
        """The fields as a cache, checkpoint or cell key: ``recalibrate_bn`` only when set, so every
        recipe from before it keeps its key."""
        fields = asdict(self)
        if not self.recalibrate_bn:
            del fields["recalibrate_bn"]
        return fields

    def validate(self) -> None:
        """Refuse a recipe before any work: every number finite and in range; errors name the option."""
        for name, least in (("epochs", 1), ("batch_size", 1), ("eval_batch_size", 1), ("seed", 0)):
            value = getattr(self, name)
            if not _is_int(value) or value < least:
                raise InputError(f"{_option(name)} must be an integer of at least {least}, got {value!r}")
        for name in ("lr", "momentum", "weight_decay", "lr_decay"):
            value = getattr(self, name)
            if not _is_real(value) or not math.isfinite(value):
                raise InputError(f"{_option(name)} must be a finite number, got {value!r}")
        if self.lr <= 0:
            raise InputError(f"--lr must be positive, got {self.lr}; e.g. --lr 0.1")
        if self.weight_decay < 0:
            raise InputError(f"--weight-decay must be at least 0 (0 = none), got {self.weight_decay}")
        if not 0 <= self.momentum < 1:
            raise InputError(f"--momentum must lie in [0, 1), got {self.momentum}; e.g. --momentum 0.9")
        if not 0 < self.lr_decay <= 1:
            raise InputError(f"--lr-decay must lie in (0, 1] (the factor applied at each milestone), got {self.lr_decay}")
        if self.schedule not in ("cosine", "multistep", "constant"):
            raise InputError(f"--schedule must be cosine, multistep or constant, got {self.schedule!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise InputError(f"--optimizer must be sgd or adam, got {self.optimizer!r}")
        if not isinstance(self.recalibrate_bn, bool):
            raise InputError(f"recalibrate_bn must be true or false, got {self.recalibrate_bn!r}")
        if self.nesterov and self.optimizer == "sgd" and self.momentum == 0:
            raise InputError("--nesterov needs a positive --momentum; drop --nesterov or set e.g. --momentum 0.9")
        milestones = list(self.milestones)
        if not all(_is_int(m) and 0 < m < self.epochs for m in milestones) or any(a >= b for a, b in pairwise(milestones)):
            raise InputError(
                f"--milestones must be increasing epochs between 1 and {self.epochs - 1} (--epochs {self.epochs}; a decay at or "
                f"after the last epoch changes nothing), got {','.join(map(str, milestones))}; e.g. --milestones 30,60 with --epochs 90"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # numpy scalars would not load back weights_only


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass
class TrainResult:
    top1: float | None
    """Final-epoch test top-1 accuracy in percent (None without a test split)."""
    top5: float | None
    epochs: int
    seconds: float
    """Wall time of the training epochs of this process (a resumed run counts only its own part)."""
    images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)


class Objective:
    """What a training step minimises. The default: cross-entropy of the class logits. Another
    objective (e.g. contrastive) makes its own network inputs and per-sample losses.

    Both methods see tensors on the training device (uint8 ``images``, ``labels``); randomness comes
    from ``generator``, a CPU generator: draw on the CPU and move the draws (``.to(images.device)``),
    so a seed gives the same inputs on every device. ``losses`` gets float32 outputs outside autocast."""

    supervised = True
    """The outputs are class logits, so train accuracy is logged."""

    def inputs(self, images: torch.Tensor, transform: BatchTransform, generator: torch.Generator) -> torch.Tensor:
        """The network's input batch from the raw images: here the loop's augmentation."""
        return transform(images, generator)

    def losses(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B,) per-sample losses from the network's outputs (its last layer); the step minimises their mean."""
        return F.cross_entropy(outputs, labels, reduction="none")


def seed_everything(seed: int) -> None:
    """One seeding block (CleanRL style): Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, dist_ctx: DistributedContext) -> list[torch.Tensor]:
    """This rank's batches of training indices for one epoch (a lone last sample joins the batch
    before it: batch norm cannot train on one sample)."""
    sampler = DistributedSampler(range(n), num_replicas=dist_ctx.world_size, rank=dist_ctx.rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    order = torch.tensor(list(iter(sampler)), dtype=torch.long)
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1:
        lone = batches.pop()
        batches[-1] = torch.cat([batches[-1], lone])
    return batches


def _augment_generator(seed: int, epoch: int, rank: int, stream: int = 0) -> torch.Generator:
    """A CPU generator from ``(seed, epoch, rank)``: stream 0 augments, stream 1 seeds the epoch's readers."""
    key = [seed, epoch, rank] if stream == 0 else [seed, epoch, rank, stream]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def _make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """On a GPU the fused implementation: one kernel per step, and fp16's loss scaler skips a step
    with infinite gradients there without reading the check back to the CPU."""
    fused = {"fused": True} if device.type == "cuda" else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov, **fused
    )


def _make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.lr_decay)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


class _NetworkSteps:
    """Minibatch steps of a network: forward (under autocast), the objective's loss, backward,
    optimiser step; the epoch's loss and accuracy summed on the device."""

    unit, rate_key, columns = "img", "images_per_s", ("loss {task.fields[loss]:.3f}",)

    def __init__(self, model: nn.Module, net: nn.Module, split: Split, transform: BatchTransform, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler, objective: Objective, dist_ctx: DistributedContext,
                 runtime: Runtime, seed: int) -> None:
        self.model, self.split, self.transform = model, split, transform
        self.optimizer, self.schedule, self.objective, self.dist_ctx = optimizer, schedule, objective, dist_ctx
        self.runtime, self.seed, self.scaler = runtime, seed, runtime.grad_scaler()
        self.forward = CompiledForward(net) if runtime.compile else net
        self.sum_dtype = torch.float32 if runtime.device.type == "mps" else torch.float64  # MPS has no float64

    def batches(self, epoch: int, batches: list[torch.Tensor]):
        reader = _augment_generator(self.seed, epoch, self.dist_ctx.rank, stream=1)
        for index, images, labels in read_batches(self.split, batches, workers=self.runtime.workers,
                                                  pin_memory=self.runtime.pin_memory, generator=reader):
            yield index, (images, labels)

    def begin_epoch(self) -> None:
        self.model.train()
        device = self.runtime.device
        self.loss_sum = torch.zeros((), dtype=self.sum_dtype, device=device)
        self.correct = torch.zeros((), dtype=torch.int64, device=device)
        self.seen = 0

    def step(self, epoch: int, step: int, index: torch.Tensor, batch: tuple[torch.Tensor, torch.Tensor],
             generator: torch.Generator) -> BatchContext:
        device = self.runtime.device
        images, labels = (t.to(device, non_blocking=True) for t in batch)
        inputs = self.runtime.inputs(self.objective.inputs(images, self.transform, generator))
        with self.runtime.autocast():
            features, outputs = self.forward(inputs)
        outputs, features = outputs.float(), features.float()  # the loss and the hooks in float32
        losses = self.objective.losses(outputs, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses.mean()).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        outputs, losses, features = outputs.detach(), losses.detach(), features.detach()
        self.loss_sum += losses.sum()
        self.seen += len(index)
        if self.objective.supervised:
            self.correct += (outputs.argmax(1) == labels).sum()
        return BatchContext(epoch, step, index, labels, outputs, losses, features, self.model, inputs)

    def fields(self) -> dict[str, float]:
        """The running loss for the progress bar (waits for the device)."""
        return {"loss": float(self.loss_sum) / max(self.seen, 1)}

    def end_epoch(self) -> dict[str, float]:
        self.schedule.step()
        record = {"train_loss": float(self.loss_sum) / self.seen}
        if self.objective.supervised:
            record["train_acc"] = 100.0 * int(self.correct) / self.seen
        return {**record, "lr": self.optimizer.param_groups[0]["lr"]}

    def finish(self) -> None:
        if self.dist_ctx.enabled:  # batch-norm statistics drift per rank after the last step: take rank 0's
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def state_dict(self) -> dict[str, Any]:
        scaler = {"scaler": self.scaler.state_dict()} if self.scaler.is_enabled() else {}
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(), **scaler}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])


class _ReplaySteps:
    """Fixed features in place of a network: a step hands the hooks those rows, nothing trains."""

    unit, rate_key, columns = "samples", "samples_per_s", ()

    def __init__(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        self.features, self.labels = features, labels

    def batches(self, epoch: int, batches: list[torch.Tensor]):
        return ((index, None) for index in batches)

    def step(self, epoch: int, step: int, index: torch.Tensor, batch: None, generator: torch.Generator) -> BatchContext:
        return BatchContext(epoch, step, index, self.labels[index], None, None, self.features[index], None)

    def begin_epoch(self) -> None:
        pass

    def fields(self) -> dict[str, float]:
        return {}

    def end_epoch(self) -> dict[str, float]:
        return {}

    def finish(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _refuse_existing_run(out: Path | None, resume: bool) -> None:
    if out is not None and (out / CHECKPOINT).exists() and not resume:
        raise InputError(f"{out / CHECKPOINT}: a run already lives in this directory; pass --resume to continue it or choose another --out")


def _run_epochs(
    steps: _NetworkSteps | _ReplaySteps, *, n: int, epochs: int, batch_size: int, seed: int, recipe: dict[str, Any],
    hooks: Sequence[TrainHook], model: nn.Module | None, data: Any, out: Path | None, resume: bool, progress: bool,
    dist_ctx: DistributedContext, writes: bool,
) -> tuple[list[dict[str, Any]], float, int]:
    """The epochs both :func:`train` and :func:`replay_features` run: each epoch's batches from
    ``(seed, epoch, rank)``, the hooks around every step, an atomic checkpoint and a log line per
    epoch (when this process ``writes``: rank 0 under torchrun), and resume from the last checkpoint.
    Returns the history, seconds and samples stepped."""
    checkpoint_path = out / CHECKPOINT if out is not None else None
    start_epoch, step, history = 0, 0, []
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        state = load_checkpoint(checkpoint_path, fix=START_OVER)
        if state.get("config") != recipe:
            raise InputError(f"{checkpoint_path}: was written with another recipe {state.get('config')}; resume with the same options or choose another --out")
        steps.load_state_dict(state)
        set_rng_state(state["rng"])
        for hook, hook_state in zip(hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        start_epoch, step, history = state["epoch"] + 1, state["step"], state["history"]
        if writes:
            _rewrite_log(out / EPOCH_LOG, history)
        log.info("resumed from %s at epoch %d", checkpoint_path, start_epoch + 1)

    for hook in hooks:
        hook.on_train_start(model, data)
    seconds, samples = 0.0, 0
    columns = (f"{{task.fields[rate]:,.0f}} {steps.unit}/s", *steps.columns)
    with make_progress(steps.unit, *columns, enabled=progress and writes) as bar:
        for epoch in range(start_epoch, epochs):
            batches = epoch_batches(n, batch_size, epoch, seed, dist_ctx)
            generator = _augment_generator(seed, epoch, dist_ctx.rank)
            steps.begin_epoch()
            task = bar.add_task(f"epoch {epoch + 1}/{epochs}", total=sum(len(b) for b in batches), rate=0.0, **steps.fields())
            for hook in hooks:
                hook.on_epoch_start(epoch, model)
            epoch_start, seen = time.perf_counter(), 0
            for number, (index, payload) in enumerate(steps.batches(epoch, batches), start=1):
                batch = steps.step(epoch, step, index, payload, generator)
                if hooks and dist_ctx.enabled:  # every rank's hooks see the global batch: the same records and agent on every rank
                    batch = gather_batch(batch, dist_ctx)
                for hook in hooks:
                    hook.on_batch(batch)
                step += 1
                seen += len(index)
                fields = steps.fields() if number % PROGRESS_EVERY == 0 else {}
                bar.update(task, advance=len(index), rate=seen / max(time.perf_counter() - epoch_start, 1e-9), **fields)
            if len(batches) % PROGRESS_EVERY:  # the epoch's last steps were not read yet (or none was: a short epoch)
                bar.update(task, **steps.fields())
            ended = steps.end_epoch()  # reads the epoch's sums: waits for its last step
            epoch_seconds = time.perf_counter() - epoch_start
            seconds += epoch_seconds
            samples += seen
            record = {"epoch": epoch + 1, **ended, "seconds": epoch_seconds, steps.rate_key: seen / max(epoch_seconds, 1e-9)}
            summary = ", ".join(f"{key} {value:.4g}" for key, value in record.items() if key != "epoch")
            for hook in hooks:
                record.update(hook.on_epoch_end(epoch, model) or {})
            history.append(record)
            if out is not None and writes:
                atomic_torch_save(checkpoint_path, {
                    **steps.state_dict(), "rng": rng_state(), "hooks": [hook.state_dict() for hook in hooks],
                    "config": recipe, "epoch": epoch, "step": step, "history": history,
                })
                append_jsonl(out / EPOCH_LOG, record)
            dist_ctx.barrier()
            log.info("epoch %d/%d: %s", epoch + 1, epochs, summary)
    steps.finish()
    for hook in hooks:
        hook.on_train_end(model)
    return history, seconds, samples


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    *,
    hooks: Sequence[TrainHook] = (),
    objective: Objective | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    evaluate_test: bool = True,
    device: str | torch.device = "auto",
    amp: str = "off",
    channels_last: bool = False,
    compile: bool = False,
    workers: int = 0,
) -> TrainResult:
    """Train ``model`` on ``dataset.train`` with ``config``; return the final-epoch test accuracy.

    ``objective`` replaces the cross-entropy loss. With ``out_dir``, a checkpoint is written
    atomically after every epoch and ``resume=True`` continues from it. Under torchrun every rank
    calls this; only rank 0 writes.

    ``device``: ``auto`` (CUDA where present, else the CPU), ``cpu``, ``cuda`` (``cuda:LOCAL_RANK``
    under torchrun), ``cuda:N`` or ``mps``; the model is moved there (in place) and stays there.
    ``amp``: ``off``, ``bf16`` or ``fp16`` autocast (weights, optimiser state and the loss in float32;
    a checkpoint records it and resumes only with the same setting). ``channels_last``: NHWC memory
    format for convolutional models. ``compile``: torch.compile the forward pass (skipped with a
    warning where it cannot compile). ``workers``: DataLoader processes reading the batches (decoding
    a lazy source's files); the batches and the result are the same for any number.
    """
    config.validate()
    runtime = Runtime.of(device, amp, channels_last, compile, workers)
    dist_ctx = DistributedContext.from_env(runtime.device)
    out = Path(out_dir) if out_dir is not None else None
    _refuse_existing_run(out, resume)

    transform = BatchTransform.for_dataset(dataset, augment=config.augment)
    runtime.place(model)
    net: nn.Module = FeaturesAndLogits(model)
    if dist_ctx.enabled:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    optimizer = _make_optimizer(model, config, runtime.device)
    steps = _NetworkSteps(model, net, dataset.train, transform, optimizer, _make_schedule(optimizer, config), objective or Objective(),
                          dist_ctx, runtime, config.seed)
    recipe = config.identity() if amp == "off" else {**config.identity(), "amp": amp}  # fp32 runs keep the recipe they always had
    history, seconds, images = _run_epochs(
        steps, n=len(dataset), epochs=config.epochs, batch_size=config.batch_size, seed=config.seed, recipe=recipe,
        hooks=hooks, model=model, data=dataset, out=out, resume=resume, progress=progress, dist_ctx=dist_ctx,
        writes=dist_ctx.is_main,
    )
    if config.recalibrate_bn:
        recalibrate_batch_norm(model, dataset.train, BatchTransform.for_dataset(dataset, augment=False), config.batch_size, runtime)
    accuracy = {"top1": None, "top5": None}
    if evaluate_test and dataset.test is not None:
        accuracy = evaluate(model, dataset.test, BatchTransform.for_dataset(dataset, augment=False), batch_size=config.eval_batch_size,
                            progress="test evaluation" if progress and dist_ctx.is_main else None, workers=workers)
    result = TrainResult(
        top1=accuracy["top1"],
        top5=accuracy["top5"],
        epochs=config.epochs,
        seconds=seconds,
        images_per_second=images / seconds if seconds else 0.0,
        history=history,
    )
    if out is not None and dist_ctx.is_main:
        atomic_write_json(out / RESULT, {**asdict(result), "config": asdict(config), "runtime": runtime.record(),
                                         "dataset": dataset.name, "fingerprint": dataset.fingerprint})
    return result


def replay_features(
    features: torch.Tensor,
    labels: torch.Tensor | np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    hooks: Sequence[TrainHook],
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Run ``hooks`` over fixed ``features`` (N, d) as :func:`train` runs them over a network's: the
    same batches per epoch (``epoch_batches``), no model (``BatchContext.model``, ``logits`` and
    ``losses`` are None), a checkpoint per epoch in ``out_dir`` and ``resume``. Returns the per-epoch records."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not _is_int(value) or value < 1:
            raise InputError(f"{name} must be an integer of at least 1, got {value!r}")
    out = Path(out_dir) if out_dir is not None else None
    _refuse_existing_run(out, resume)
    features, labels = torch.as_tensor(features), torch.as_tensor(labels)
    recipe = {"replay": list(features.shape), "epochs": epochs, "batch_size": batch_size, "seed": seed}
    history, _, _ = _run_epochs(
        _ReplaySteps(features, labels), n=len(features), epochs=epochs, batch_size=batch_size, seed=seed, recipe=recipe,
        hooks=hooks, model=None, data=None, out=out, resume=resume, progress=progress, dist_ctx=DistributedContext(),
        writes=DistributedContext.current().is_main,  # under torchrun every rank replays all of it; rank 0 writes
    )
    return history


def _rewrite_log(path: Path, history: list[dict]) -> None:
    """On resume, the log holds exactly the checkpointed epochs (a crash may have left one more)."""
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history).encode())


def build_for(dataset: Dataset, model: "str | ModelFactory", width: int | None, seed: int) -> nn.Module:
    """Seed everything, then build ``model`` shaped for ``dataset`` (channels, size, classes): a
    registered name (with ``width``), or the user's factory (:mod:`rlselector.models.user`)."""
    from ..models import MODELS, build_model, build_user_model

    height, width_px = dataset.image_shape
    if isinstance(model, str) and model in MODELS and MODELS[model].square_only and height != width_px:
        raise InputError(f"model {model!r} needs square images but {dataset.name!r} has {height}x{width_px}; "
                         f"resize the data (e.g. folder:/path?size=N) or choose a CNN (resnet18, vgg16, densenet121)")
    seed_everything(seed)
    shape = {"in_channels": dataset.in_channels, "num_classes": dataset.num_classes, "image_size": dataset.image_size}
    if callable(model):
        return build_user_model(model, **shape)
    return build_model(model, **shape, width=width)


def recalibrate_batch_norm(model: nn.Module, split: Split, transform: BatchTransform, batch_size: int, runtime: Runtime) -> None:
    """Every batch-norm layer's running statistics recomputed as a plain average over ``split``
    (``torch.optim.swa_utils.update_bn``; the weights unchanged, the model's mode restored); a model
    without batch norm is left as it is."""
    from torch.optim.swa_utils import update_bn

    batches = list(torch.arange(len(split)).split(batch_size))
    with torch.no_grad():
        inputs = (runtime.inputs(transform(images.to(runtime.device, non_blocking=True)))
                  for _, images, _ in read_batches(split, batches, workers=runtime.workers, pin_memory=runtime.device.type == "cuda",
                                                   generator=torch.Generator()))
        update_bn(inputs, model)


def train_model(
    dataset: Dataset, *, model: "str | ModelFactory", width: int | None, config: TrainConfig, **kwargs: Any
) -> tuple[nn.Module, TrainResult]:
    """Build a fresh ``model`` (a registered name or the user's factory) for ``dataset`` from
    ``config.seed`` and train it from scratch."""
    net = build_for(dataset, model, width, config.seed)
    return net, train(net, dataset, config, **kwargs)
