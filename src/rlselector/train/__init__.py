"""The one training loop, its hooks, evaluation and distributed plumbing."""

from .checkpoint import load_checkpoint
from .device import resolve_device
from .evaluate import evaluate, forward_split
from .hooks import BatchContext, TrainHook
from .loop import Objective, TrainConfig, TrainResult, build_for, replay_features, seed_everything, train, train_model

__all__ = [
    "BatchContext", "Objective", "TrainConfig", "TrainHook", "TrainResult", "build_for", "evaluate", "forward_split",
    "load_checkpoint", "replay_features", "resolve_device", "seed_everything", "train", "train_model",
]
