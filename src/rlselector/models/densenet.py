"""DenseNet-121 (DenseNet-BC), CIFAR-style.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017
(arXiv:1608.06993). Dense blocks of 6, 12, 24, 16 bottleneck layers, growth rate 32, compression 0.5;
the small-image variant uses a 3x3 stride-1 stem and no max-pool (~6.96 M params for 10 classes).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import ImageClassifier, register_model

BOTTLENECK_FACTOR = 4
"""The 1x1 bottleneck conv outputs 4 * growth channels (the "B" in DenseNet-BC)."""


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv, BN-ReLU-3x3 conv producing ``growth`` new channels, concatenated to the input."""

    def __init__(self, in_channels: int, growth: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, BOTTLENECK_FACTOR * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(BOTTLENECK_FACTOR * growth)
        self.conv2 = nn.Conv2d(BOTTLENECK_FACTOR * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], dim=1)


class Transition(nn.Sequential):
    """BN-ReLU-1x1 conv compressing the channels, then a 2x2 average pool (left out on a 1x1 map)."""

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool) -> None:
        super().__init__(
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.AvgPool2d(2) if pool else nn.Identity(),
        )


class DenseNet(ImageClassifier):
    """Stem, dense blocks joined by compressing transitions, final BN-ReLU, global average pool."""

    def __init__(
        self,
        layers_per_block: tuple[int, ...],
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        growth: int,
        compression: float = 0.5,
    ) -> None:
        """
        layers_per_block: dense layers in each block (6, 12, 24, 16 for DenseNet-121).
        in_channels: image channels (1 for grey, 3 for colour).
        num_classes: outputs of the classifier.
        image_size: side of the (square) input; transition pools that would shrink a 1x1 map are left out.
        growth: channels each dense layer adds (32 = the paper's DenseNet-121).
        compression: fraction of channels a transition keeps.
        """
        super().__init__()
        channels = 2 * growth
        stages: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)]
        side = image_size
        for block_index, num_layers in enumerate(layers_per_block):
            for _ in range(num_layers):
                stages.append(DenseLayer(channels, growth))
                channels += growth
            if block_index < len(layers_per_block) - 1:
                compressed = int(channels * compression)
                stages.append(Transition(channels, compressed, pool=side > 1))
                side = max(1, side // 2)
                channels = compressed
        stages += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)]
        self.stages = nn.Sequential(*stages)
        self.feature_dim = channels
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x).flatten(1)


@register_model("densenet121", summary="DenseNet-121 (Huang et al. 2017), CIFAR stem, growth 32, compression 0.5")
def densenet121(*, in_channels: int, num_classes: int, image_size: int, width: int = 64) -> DenseNet:
    """DenseNet-121; ``width`` / 2 is the growth rate (width 64 = growth 32, the paper's model)."""
    return DenseNet(
        (6, 12, 24, 16),
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        growth=max(1, width // 2),
    )
