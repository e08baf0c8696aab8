"""The one training loop. Target networks, proxy models and evaluation all train here.

SGD with momentum and a cosine or multi-step schedule; per-minibatch hooks that see indices,
logits, per-sample losses and penultimate features; an atomic checkpoint every epoch from which
``resume=True`` continues exactly (the data order and augmentation of an epoch depend only on
``(seed, epoch, rank)``); a progress bar with images/s and ETA; a JSON-lines log per epoch;
DistributedDataParallel under torchrun. Accuracy is the final epoch's, never the best epoch's.
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from ..data.base import Dataset
from ..data.transforms import BatchTransform
from ..errors import InputError
from ..io import append_jsonl, atomic_torch_save, atomic_write_bytes, atomic_write_json
from .distributed import DistributedContext
from .evaluate import evaluate
from .hooks import BatchContext, TrainHook

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
EPOCH_LOG = "log.jsonl"
RESULT = "result.json"


@dataclass(frozen=True)
class TrainConfig:
    """One training recipe, used for every model the project trains."""

    epochs: int = 3
    """Passes over the training set."""
    batch_size: int = 128
    """Samples per SGD step (per process under torchrun)."""
    lr: float = 0.1
    """Peak learning rate."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """L2 weight decay of SGD."""
    nesterov: bool = False
    """Nesterov momentum."""
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

    def validate(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise InputError(f"--lr must be positive, got {self.lr}")
        if self.schedule not in ("cosine", "multistep", "constant"):
            raise InputError(f"--schedule must be cosine, multistep or constant, got {self.schedule!r}")


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


def seed_everything(seed: int) -> None:
    """One seeding block (CleanRL style): Python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _FeaturesAndLogits(nn.Module):
    """One forward pass returning both, so DDP sees a single module call."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.model.features(x)
        return features, self.model.classifier(features)


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


def _augment_generator(seed: int, epoch: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]))


def _make_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if config.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(config.milestones), gamma=config.lr_decay)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f}/{task.total:,.0f} img"),
        TextColumn("{task.fields[rate]:,.0f} img/s"),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


def train(
    model: nn.Module,
    dataset: Dataset,
    config: TrainConfig,
    *,
    hooks: Sequence[TrainHook] = (),
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    evaluate_test: bool = True,
) -> TrainResult:
    """Train ``model`` on ``dataset.train`` with ``config``; return the final-epoch test accuracy.

    With ``out_dir``, a checkpoint is written atomically after every epoch and ``resume=True``
    continues from it. Under torchrun every rank calls this; only rank 0 writes.
    """
    config.validate()
    dist_ctx = DistributedContext.from_env()
    out = Path(out_dir) if out_dir is not None else None
    checkpoint_path = out / CHECKPOINT if out else None
    if checkpoint_path is not None and checkpoint_path.exists() and not resume:
        raise InputError(f"{checkpoint_path}: a run already lives in this directory; pass --resume to continue it or choose another --out")

    transform = BatchTransform.for_dataset(dataset, augment=config.augment)
    eval_transform = BatchTransform.for_dataset(dataset, augment=False)
    net: nn.Module = _FeaturesAndLogits(model)
    if dist_ctx.enabled:
        net = nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=config.nesterov
    )
    schedule = _make_schedule(optimizer, config)

    start_epoch, step, history = 0, 0, []
    if resume and checkpoint_path is not None and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        if state["config"] != asdict(config):
            raise InputError(f"{checkpoint_path}: was written with another recipe {state['config']}; resume with the same options or choose another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        random.setstate(state["python_rng"])
        for hook, hook_state in zip(hooks, state["hooks"]):
            hook.load_state_dict(hook_state)
        start_epoch, step, history = state["epoch"] + 1, state["step"], state["history"]
        if dist_ctx.is_main:
            _rewrite_log(out / EPOCH_LOG, history)
        log.info("resumed from %s at epoch %d", checkpoint_path, start_epoch + 1)

    for hook in hooks:
        hook.on_train_start(model, dataset)
    model.train()
    seconds = 0.0
    images_done = 0
    n = len(dataset)
    with _progress(progress and dist_ctx.is_main) as bar:
        for epoch in range(start_epoch, config.epochs):
            batches = epoch_batches(n, config.batch_size, epoch, config.seed, dist_ctx)
            generator = _augment_generator(config.seed, epoch, dist_ctx.rank)
            task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=sum(len(b) for b in batches), rate=0.0, loss=0.0)
            for hook in hooks:
                hook.on_epoch_start(epoch, model)
            epoch_start = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            for index in batches:
                images, labels = dataset.train.batch(index)
                inputs = transform(images, generator)
                features, logits = net(inputs)
                losses = F.cross_entropy(logits, labels, reduction="none")
                optimizer.zero_grad(set_to_none=True)
                losses.mean().backward()
                optimizer.step()
                logits, losses, features = logits.detach(), losses.detach(), features.detach()
                batch_ctx = BatchContext(epoch, step, index, labels, logits, losses, features, model, inputs)
                for hook in hooks:
                    hook.on_batch(batch_ctx)
                step += 1
                loss_sum += float(losses.sum())
                correct += int((logits.argmax(1) == labels).sum())
                seen += len(index)
                elapsed = time.perf_counter() - epoch_start
                bar.update(task, advance=len(index), rate=seen / max(elapsed, 1e-9), loss=loss_sum / seen)
            epoch_seconds = time.perf_counter() - epoch_start
            seconds += epoch_seconds
            images_done += seen
            schedule.step()
            record = {
                "epoch": epoch + 1,
                "train_loss": loss_sum / seen,
                "train_acc": 100.0 * correct / seen,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": epoch_seconds,
                "images_per_s": seen / epoch_seconds,
            }
            for hook in hooks:
                record.update(hook.on_epoch_end(epoch, model) or {})
            history.append(record)
            if out is not None and dist_ctx.is_main:
                _checkpoint(checkpoint_path, model, optimizer, schedule, hooks, config, epoch, step, history)
                append_jsonl(out / EPOCH_LOG, record)
            dist_ctx.barrier()
            log.info("epoch %d/%d loss %.4f train acc %.2f%% (%.0f img/s)", epoch + 1, config.epochs, record["train_loss"], record["train_acc"], record["images_per_s"])

    if dist_ctx.enabled:  # batch-norm statistics drift per rank after the last step: take rank 0's
        for buffer in model.buffers():
            torch.distributed.broadcast(buffer, src=0)
    for hook in hooks:
        hook.on_train_end(model)
    accuracy = {"top1": None, "top5": None}
    if evaluate_test and dataset.test is not None:
        accuracy = evaluate(model, dataset.test, eval_transform, batch_size=config.eval_batch_size)
    result = TrainResult(
        top1=accuracy["top1"],
        top5=accuracy["top5"],
        epochs=config.epochs,
        seconds=seconds,
        images_per_second=images_done / seconds if seconds else 0.0,
        history=history,
    )
    if out is not None and dist_ctx.is_main:
        atomic_write_json(out / RESULT, {**asdict(result), "config": asdict(config), "dataset": dataset.name, "fingerprint": dataset.fingerprint})
    return result


def _checkpoint(path, model, optimizer, schedule, hooks, config, epoch, step, history) -> None:
    atomic_torch_save(
        path,
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": np.random.get_state(),
            "python_rng": random.getstate(),
            "hooks": [hook.state_dict() for hook in hooks],
            "config": asdict(config),
            "epoch": epoch,
            "step": step,
            "history": history,
        },
    )


def _rewrite_log(path: Path, history: list[dict]) -> None:
    """On resume, the log holds exactly the checkpointed epochs (a crash may have left one more)."""
    atomic_write_bytes(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in history).encode())


def build_for(dataset: Dataset, model: str, width: int | None, seed: int) -> nn.Module:
    """Seed everything, then build ``model`` shaped for ``dataset`` (channels, size, classes)."""
    from ..models import build_model

    seed_everything(seed)
    return build_model(model, in_channels=dataset.in_channels, num_classes=dataset.num_classes, image_size=dataset.image_size, width=width)


def train_model(
    dataset: Dataset, *, model: str, width: int | None, config: TrainConfig, **kwargs: Any
) -> tuple[nn.Module, TrainResult]:
    """Build a fresh ``model`` for ``dataset`` from ``config.seed`` and train it from scratch."""
    net = build_for(dataset, model, width, config.seed)
    return net, train(net, dataset, config, **kwargs)
