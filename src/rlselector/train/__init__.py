"""The one training loop, its hooks, evaluation and distributed plumbing."""

from .evaluate import evaluate, forward_split
from .hooks import BatchContext, TrainHook
from .loop import TrainConfig, TrainResult, seed_everything, train

__all__ = ["BatchContext", "TrainConfig", "TrainHook", "TrainResult", "evaluate", "forward_split", "seed_everything", "train"]
