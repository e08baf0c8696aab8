"""VGG-16 with batch norm, CIFAR-style.

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015
(arXiv:1409.1556); batch norm after each convolution as in Ioffe, Szegedy, ICML 2015 (arXiv:1502.03167).
The small-image variant keeps the 13 convolutions and five max-pools and replaces the three
fully connected layers by one Linear on the 512 pooled channels (~14.7 M params at width 64).
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ImageClassifier, register_model

POOL = "M"
VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, POOL,
    128, 128, POOL,
    256, 256, 256, POOL,
    512, 512, 512, POOL,
    512, 512, 512, POOL,
)
"""Output channels of each 3x3 convolution at width 64, and where the 2x2 max-pools sit."""


class VGG(ImageClassifier):
    """Conv-BN-ReLU stack with max-pools, global average pool, one Linear classifier."""

    frozen_cpu_inference = True

    def __init__(
        self,
        layout: tuple[int | str, ...],
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        width: int,
    ) -> None:
        """
        layout: convolution output channels at width 64, with POOL marking each max-pool.
        in_channels: image channels (1 for grey, 3 for colour).
        num_classes: outputs of the classifier.
        image_size: side of the (square) input; pools that would shrink a 1x1 map are left out.
        width: scales every channel count by width / 64 (64 = the paper's model).
        """
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        side = image_size
        for item in layout:
            if item == POOL:
                # 32x32 reaches 1x1 after the fifth pool; 28x28 after the fourth and 8x8 after the third,
                # so the remaining pools are left out instead of shrinking the map to nothing.
                if side > 1:
                    layers.append(nn.MaxPool2d(2))
                    side //= 2
                continue
            out_channels = item * width // 64
            # No conv bias: the batch norm right after it has its own shift.
            layers += [
                nn.Conv2d(channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        self.convs = nn.Sequential(*layers)
        # Inputs larger than 32x32 leave a map wider than 1x1 after the last pool; average it.
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = channels
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.convs(x)).flatten(1)


@register_model("vgg16", summary="VGG-16 with batch norm (Simonyan & Zisserman 2015), CIFAR-style, one Linear head")
def vgg16(*, in_channels: int, num_classes: int, image_size: int, width: int = 64) -> VGG:
    """VGG-16-BN; feature_dim = 8 * width (512 at width 64)."""
    return VGG(VGG16_LAYOUT, in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=width)
