"""The one training loop, its hooks, evaluation and distributed plumbing."""

from .evaluate import evaluate, forward_split
from .hooks import BatchContext, TrainHook
from .loop import TrainConfig, TrainResult, build_for, seed_everything, train, train_model

__all__ = ["BatchContext", "TrainConfig", "TrainHook", "TrainResult", "evaluate", "forward_split", "build_for", "seed_everything", "train", "train_model"]
