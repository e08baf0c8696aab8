"""ViT-Small with 4x4 patches, for small images.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale",
ICLR 2021 (arXiv:2010.11929); the "Small" size (dim 384, depth 12, 6 heads) is from Touvron et al.,
"Training data-efficient image transformers & distillation through attention" (DeiT), ICML 2021
(arXiv:2012.12877). Patch size 4 turns a 32x32 image into 64 tokens, as in the CIFAR ViT literature.
Pre-norm blocks, a cls token, learned position embeddings, no dropout (deterministic).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import InputError
from .registry import ImageClassifier, register_model

PATCH_SIZE = 4
DIM_PER_WIDTH = 6
"""Embedding dim = 6 * width: width 64 gives ViT-Small's 384."""
HEAD_DIM = 64
"""ViT-Small's 384 / 6 heads; narrower models keep about this many dims per head."""


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(x)
        x = x + self.attention(normed, normed, normed, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class VisionTransformer(ImageClassifier):
    """Patch embedding, cls token + position embedding, transformer blocks, final LayerNorm on the cls token."""

    def __init__(
        self,
        *,
        in_channels: int,
        num_classes: int,
        image_size: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: int = 4,
        patch_size: int = PATCH_SIZE,
    ) -> None:
        """
        in_channels: image channels (1 for grey, 3 for colour).
        num_classes: outputs of the classifier.
        image_size: side of the (square) input; must be a multiple of patch_size.
        dim: token embedding dim (384 for ViT-Small); must be a multiple of num_heads.
        depth: number of transformer blocks.
        num_heads: attention heads per block.
        mlp_ratio: hidden width of each block's MLP, as a multiple of dim.
        patch_size: side of the square patches that become tokens.
        """
        super().__init__()
        if image_size % patch_size:
            raise InputError(
                f"vit_small needs an image size that is a multiple of the patch size {patch_size}, got {image_size}; "
                f"resize or pad the images (e.g. to {image_size + patch_size - image_size % patch_size}) or pick a CNN"
            )
        self.image_size = image_size
        num_patches = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.blocks = nn.Sequential(*(TransformerBlock(dim, num_heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.feature_dim = dim
        self.classifier = nn.Linear(dim, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # ViT / timm initialisation: truncated normal (std 0.02) for embeddings and Linear weights.
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.position_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.image_size, self.image_size):
            # The position embedding is sized for one image size; say so rather than fail on a broadcast.
            raise InputError(
                f"vit_small was built for {self.image_size}x{self.image_size} images, got {tuple(x.shape[-2:])}; "
                "build it with the data's image_size"
            )
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1) + self.position_embed
        return self.norm(self.blocks(tokens))[:, 0]


def heads_for(dim: int) -> int:
    """About one head per 64 dims, at least one, and a divisor of dim (MultiheadAttention splits dim evenly)."""
    num_heads = max(1, dim // HEAD_DIM)
    while dim % num_heads:
        num_heads -= 1
    return num_heads


@register_model("vit_small", summary="ViT-Small (Dosovitskiy et al. 2021), patch 4, dim 384, depth 12, 6 heads", square_only=True)
def vit_small(*, in_channels: int, num_classes: int, image_size: int, width: int = 64) -> VisionTransformer:
    """ViT-Small/4; embed dim = 6 * width, heads = about dim / 64 (width 64: 384 dims, 6 heads)."""
    dim = DIM_PER_WIDTH * width
    return VisionTransformer(
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        dim=dim,
        depth=12,
        num_heads=heads_for(dim),
    )
