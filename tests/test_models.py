"""The model zoo: exact parameter counts, shapes, and the features/classifier contract."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rlselector.errors import InputError
from rlselector.models import MODELS, build_model, list_models

ALL_MODELS = ["densenet121", "resnet18", "resnet50", "vgg16", "vit_small"]
RESNETS = ["resnet18", "resnet50"]
SMALL_WIDTH = 8
"""Narrow models keep the forward-pass tests fast on CPU."""

PAPER_WIDTH_PARAMS = {
    # The standard CIFAR ResNets (3 input channels, 10 classes).
    "resnet18": 11_173_962,
    "resnet50": 23_520_842,
    # Matches the common CIFAR DenseNet-121 (growth 32, compression 0.5).
    "densenet121": 6_956_298,
    # Bias-free convs (batch norm follows each); with conv biases it would be 14,728,266.
    "vgg16": 14_724_042,
    # ViT-Small/4 at 32x32: 65 position embeddings, 12 blocks of 1,774,464 params.
    "vit_small": 21_342_346,
}

EXPECTED_FEATURE_DIM = {
    "resnet18": 8 * SMALL_WIDTH,
    "resnet50": 32 * SMALL_WIDTH,
    "vgg16": 8 * SMALL_WIDTH,
    # growth 4: 8 stem + 6*4 = 32 -> 16; +12*4 = 64 -> 32; +24*4 = 128 -> 64; +16*4 = 128.
    "densenet121": 128,
    "vit_small": 6 * SMALL_WIDTH,
}


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def build_small(name: str, *, in_channels: int = 3, image_size: int = 32, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, in_channels=in_channels, num_classes=num_classes, image_size=image_size, width=SMALL_WIDTH)


def test_registry_lists_every_model_with_a_summary():
    assert list_models() == ALL_MODELS
    assert sorted(MODELS) == ALL_MODELS
    for name, entry in MODELS.items():
        assert entry.name == name
        assert entry.summary and "\n" not in entry.summary
        assert entry.default_width == 64


@pytest.mark.parametrize("name", ALL_MODELS)
def test_parameter_count_at_paper_width(name):
    model = build_model(name, in_channels=3, num_classes=10, image_size=32)
    assert count_params(model) == PAPER_WIDTH_PARAMS[name]


def test_width_none_is_paper_width():
    default = build_model("resnet18", in_channels=3, num_classes=10, image_size=32, width=None)
    assert count_params(default) == PAPER_WIDTH_PARAMS["resnet18"]
    assert default.feature_dim == 512


def test_vit_small_paper_shape():
    model = build_model("vit_small", in_channels=3, num_classes=10, image_size=32)
    assert model.feature_dim == 384
    assert len(model.blocks) == 12
    assert model.blocks[0].attention.num_heads == 6
    assert model.blocks[0].mlp[0].out_features == 4 * 384
    assert model.position_embed.shape == (1, 65, 384)


@pytest.mark.parametrize(
    ("name", "in_channels", "image_size"),
    [(name, c, s) for name in ALL_MODELS for c in (1, 3) for s in (28, 32)]
    + [(name, c, 8) for name in RESNETS for c in (1, 3)],
)
def test_shapes_and_forward_equals_classifier_of_features(name, in_channels, image_size):
    model = build_small(name, in_channels=in_channels, image_size=image_size, num_classes=7).eval()
    x = torch.randn(2, in_channels, image_size, image_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feats = model.features(x)
        logits = model(x)
    assert model.feature_dim == EXPECTED_FEATURE_DIM[name]
    assert feats.shape == (2, model.feature_dim) and feats.dtype == torch.float32
    assert logits.shape == (2, 7)
    assert torch.equal(logits, model.classifier(feats))
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_classifier_is_last_linear_on_features(name):
    model = build_small(name)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears[-1] is model.classifier
    assert type(model.classifier) is nn.Linear
    assert model.classifier.in_features == model.feature_dim
    assert model.classifier.out_features == 10


@pytest.mark.parametrize("name", ALL_MODELS)
def test_init_is_deterministic_under_seed(name):
    first, second = build_small(name).state_dict(), build_small(name).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[key], second[key]) for key in first)
    torch.manual_seed(1)
    other = build_model(name, in_channels=3, num_classes=10, image_size=32, width=SMALL_WIDTH).state_dict()
    assert not torch.equal(first["classifier.weight"], other["classifier.weight"])


@pytest.mark.parametrize("name", ALL_MODELS)
def test_training_step_reaches_every_parameter(name):
    model = build_small(name, in_channels=1, image_size=28).train()
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    nn.functional.cross_entropy(model(x), torch.tensor([0, 3])).backward()
    missing = [key for key, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []


def test_vgg_leaves_out_pools_once_the_map_is_one_pixel():
    def pools(image_size: int) -> int:
        return sum(isinstance(m, nn.MaxPool2d) for m in build_small("vgg16", image_size=image_size).modules())

    assert (pools(32), pools(28), pools(8)) == (5, 4, 3)


def test_densenet_growth_is_half_the_width():
    model = build_model("densenet121", in_channels=3, num_classes=10, image_size=32, width=16)
    stem, first_dense_layer = model.stages[0], model.stages[1]
    assert stem.out_channels == 16  # 2 * growth
    assert first_dense_layer.conv2.out_channels == 8


def test_vit_heads_divide_the_embedding_dim():
    assert build_small("vit_small").blocks[0].attention.num_heads == 1  # width 8 -> dim 48
    # width 45 -> dim 270: 270 // 64 = 4 heads would not divide 270, so 3.
    torch.manual_seed(0)
    model = build_model("vit_small", in_channels=1, num_classes=2, image_size=8, width=45)
    assert model.feature_dim == 270 and model.blocks[0].attention.num_heads == 3


def test_vit_refuses_image_size_not_divisible_by_patch():
    with pytest.raises(InputError, match=r"multiple of the patch size 4.*30"):
        build_model("vit_small", in_channels=3, num_classes=10, image_size=30, width=SMALL_WIDTH)


def test_vit_refuses_input_of_another_size():
    model = build_small("vit_small", image_size=32)
    with pytest.raises(InputError, match="built for 32x32"):
        model.features(torch.zeros(1, 3, 28, 28))


def test_unknown_model_lists_known_ones():
    with pytest.raises(InputError) as info:
        build_model("resnet1000", in_channels=3, num_classes=10, image_size=32)
    message = str(info.value)
    assert "resnet1000" in message
    for name in ALL_MODELS:
        assert name in message


@pytest.mark.parametrize(
    ("field", "value"),
    [("in_channels", 0), ("num_classes", -1), ("image_size", 2.5), ("width", 0), ("width", True)],
)
def test_bad_sizes_are_refused_by_name(field, value):
    kwargs = dict(in_channels=3, num_classes=10, image_size=32, width=SMALL_WIDTH)
    kwargs[field] = value
    with pytest.raises(InputError, match=field):
        build_model("resnet18", **kwargs)
