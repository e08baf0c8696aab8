"""ResNet-18 and ResNet-50, CIFAR-style.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).
The small-image variant (3x3 stride-1 stem, no max-pool) is the one used across the CIFAR literature;
at width 64 with 10 classes it has 11,173,962 (ResNet-18) and 23,520,842 (ResNet-50) parameters.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .registry import ImageClassifier, register_model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with a shortcut."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.shortcut = _shortcut(in_planes, planes * self.expansion, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


def _shortcut(in_planes: int, out_planes: int, stride: int) -> nn.Module:
    if stride == 1 and in_planes == out_planes:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class ResNet(ImageClassifier):
    """Stem, four stages (width, 2w, 4w, 8w channels; stride 2 from stage two on), global average pool."""

    frozen_cpu_inference = True

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        blocks_per_stage: tuple[int, int, int, int],
        *,
        in_channels: int,
        num_classes: int,
        width: int,
    ) -> None:
        """
        block: the residual block type (BasicBlock for ResNet-18, Bottleneck for ResNet-50).
        blocks_per_stage: how many blocks each of the four stages stacks.
        in_channels: image channels (1 for grey, 3 for colour).
        num_classes: outputs of the classifier.
        width: channels of the stem and first stage (64 = the paper's model).
        """
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        stages = []
        in_planes = width
        for stage_index, num_blocks in enumerate(blocks_per_stage):
            planes = width * 2**stage_index
            first_stride = 1 if stage_index == 0 else 2
            blocks = []
            for stride in [first_stride] + [1] * (num_blocks - 1):
                blocks.append(block(in_planes, planes, stride))
                in_planes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        # Global pooling makes the network size-agnostic (8x8 digits, 28x28 MNIST, 32x32 CIFAR).
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_planes
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        _init_weights(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.stages(self.stem(x))).flatten(1)


def _init_weights(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


@register_model("resnet18", summary="ResNet-18 (He et al. 2016), CIFAR stem, BasicBlocks [2,2,2,2], 11.17 M params")
def resnet18(*, in_channels: int, num_classes: int, image_size: int, width: int = 64) -> ResNet:
    """ResNet-18; ``image_size`` is accepted for the common signature (global pooling handles any size)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels=in_channels, num_classes=num_classes, width=width)


@register_model("resnet50", summary="ResNet-50 (He et al. 2016), CIFAR stem, Bottlenecks [3,4,6,3], 23.52 M params")
def resnet50(*, in_channels: int, num_classes: int, image_size: int, width: int = 64) -> ResNet:
    """ResNet-50; ``image_size`` is accepted for the common signature (global pooling handles any size)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes, width=width)
