"""The eval-mode pass: the frozen CPU copy gives the eager model's numbers, and falls back when it cannot."""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
import torch

from rlselector import load_dataset
from rlselector.data.transforms import BatchTransform
from rlselector.train import build_for
from rlselector.train.evaluate import FROZEN_MIN_BATCHES, forward_split

evaluate_module = importlib.import_module("rlselector.train.evaluate")  # the package exports a function of that name

BATCH = 8
"""Digits' 1,797 images in batches of 8: 225 batches, a pass long enough to freeze."""


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", seed=0)


def eager_pass(model, data):
    transform = BatchTransform.for_dataset(data, augment=False)
    model.eval()
    features, logits = [], []
    with torch.no_grad():
        for index in torch.arange(len(data)).split(BATCH):
            images, _ = data.train.batch(index)
            f = model.features(transform(images))
            features.append(f.numpy())
            logits.append(model.classifier(f).numpy())
    return np.concatenate(features), np.concatenate(logits)


@pytest.fixture
def freezes(monkeypatch):
    """The frozen copies forward_split built (None where it fell back)."""
    built = []
    original = evaluate_module._frozen_forward

    def spy(*args):
        built.append(original(*args))
        return built[-1]

    monkeypatch.setattr(evaluate_module, "_frozen_forward", spy)
    return built


def test_a_long_cpu_pass_of_a_cnn_runs_frozen_with_the_eager_numbers(data, freezes):
    assert len(data) // BATCH >= FROZEN_MIN_BATCHES
    model = build_for(data, "resnet18", 8, 0)
    model.train()
    # a trained-looking batch norm: running statistics away from their initial 0 / 1
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    features, logits = forward_split(model, data.train, BatchTransform.for_dataset(data, augment=False), batch_size=BATCH)
    assert len(freezes) == 1 and freezes[0] is not None
    assert model.training  # its mode restored, its weights untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    eager_features, eager_logits = eager_pass(model, data)
    np.testing.assert_allclose(features, eager_features, rtol=1e-4, atol=1e-5 * np.abs(eager_features).max())
    np.testing.assert_allclose(logits, eager_logits, rtol=1e-4, atol=1e-5 * np.abs(eager_logits).max())
    assert (logits.argmax(1) == eager_logits.argmax(1)).mean() > 0.999


def test_a_frozen_copy_that_disagrees_is_dropped_for_the_eager_model(data, freezes, monkeypatch, caplog):
    model = build_for(data, "resnet18", 8, 0)

    def wrong(module):  # a copy whose logits are off: the check on the first batch must catch it
        return lambda x: tuple(out + 1.0 if i == 1 else out for i, out in enumerate(module(x)))

    monkeypatch.setattr(torch.jit, "optimize_for_inference", wrong)
    with caplog.at_level(logging.WARNING, logger="rlselector.train.evaluate"):
        features, logits = forward_split(model, data.train, BatchTransform.for_dataset(data, augment=False), batch_size=BATCH)
    assert freezes == [None] and "differs from the model" in caplog.text
    eager_features, eager_logits = eager_pass(model, data)
    np.testing.assert_array_equal(logits, eager_logits)
    np.testing.assert_array_equal(features, eager_features)


def test_short_passes_densenet_and_the_vit_stay_eager(data, freezes):
    transform = BatchTransform.for_dataset(data, augment=False)
    forward_split(build_for(data, "resnet18", 8, 0), data.train, transform)  # 15 batches of 128
    forward_split(build_for(data, "densenet121", 8, 0), data.train, transform, batch_size=BATCH)
    forward_split(build_for(data, "vit_small", 8, 0), data.train, transform, batch_size=BATCH)
    assert freezes == []
