"""What the examples share: a small CNN (any ``nn.Module`` works: rlselector reads its penultimate
``features(x)``, the input of its last linear layer, and its logits), digits as plain tensors, and
the command line."""

import argparse

import torch
from sklearn.datasets import load_digits
from torch import nn


class SmallCNN(nn.Module):
    """Two 3x3 convolutions with batch norm, global average pooling, one linear classifier."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.classifier = nn.Linear(2 * width, num_classes)

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.classifier(self.features(x))


def digits_tensors(limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's digits, the first ``limit`` of them: images (N, 1, 8, 8) in [0, 1] and labels (N,)."""
    digits = load_digits()
    images = torch.tensor(digits.images[:limit, None], dtype=torch.float32) / 16.0
    return images, torch.tensor(digits.target[:limit])


def parse_args(doc: str, *, method: str, out: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--method", default=method)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=None, help="use the first N digits (own_model: a class-stratified subset)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=out)
    return parser.parse_args()


def method_params(args: argparse.Namespace) -> dict:
    """RL-Selector spans its agent's schedule over your epochs; the other methods need no epoch count."""
    return {"epochs": args.epochs} if args.method == "rl-selector" else {}
