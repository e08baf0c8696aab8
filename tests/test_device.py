"""Where training runs: the device, mixed precision (bf16/fp16 autocast, the fp16 loss scaler in the
checkpoint), channels-last, torch.compile's fallback, and a hot loop that reads the device rarely.

Everything runs on the CPU with ``device="cpu"``; the last test runs only where a CUDA GPU is.
"""

import logging
import math

import pytest
import torch
from test_train import CrashAt

from rlselector import load_dataset
from rlselector.errors import InputError
from rlselector.train import TrainConfig, TrainHook, build_for, loop, resolve_device, train
from rlselector.train.device import Runtime

CONFIG = TrainConfig(epochs=2, batch_size=64, lr=0.05, seed=0, schedule="constant")


@pytest.fixture(scope="module")
def small():
    return load_dataset("digits", limit=300, seed=0)


def fresh(ds):
    return build_for(ds, "resnet18", 4, 0)


class Placement(TrainHook):
    """Records where and in which precision the hooks' tensors arrive."""

    def __init__(self):
        self.seen = set()

    def on_batch(self, batch):
        self.seen.add((batch.indices.device.type, batch.labels.device.type, batch.features.device.type,
                       batch.logits.dtype, batch.features.dtype, batch.losses.dtype))


def test_devices_resolve_or_are_refused_by_name():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    for bad in ("tpu", "cuda:x", "gpu0"):
        with pytest.raises(InputError, match="--device must be one of auto, cpu, cuda, cuda:N or mps"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="no CUDA GPU is visible here"):
            resolve_device("cuda:0")
    for options, option in (({"amp": "fp8"}, "--amp"), ({"workers": -1}, "--workers"), ({"workers": 1.5}, "--workers"),
                            ({"compile": "yes"}, "--compile"), ({"channels_last": 1}, "--channels-last")):
        with pytest.raises(InputError, match=option):
            Runtime.of("cpu", **options)


def test_bf16_training_is_finite_hands_hooks_float32_and_records_the_runtime(small, tmp_path):
    placement = Placement()
    model = fresh(small)
    result = train(model, small, CONFIG, hooks=[placement], out_dir=tmp_path, progress=False, device="cpu", amp="bf16")
    assert all(math.isfinite(r["train_loss"]) and r["train_loss"] > 0 for r in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert 0 <= result.top1 <= 100
    # indices, labels and features on the (CPU) device; logits, features and losses float32 under bf16 autocast
    assert placement.seen == {("cpu", "cpu", "cpu", torch.float32, torch.float32, torch.float32)}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert saved["config"]["amp"] == "bf16" and "scaler" not in saved
    import json

    runtime = json.loads((tmp_path / "result.json").read_text())["runtime"]
    assert runtime == {"device": "cpu", "device_name": "cpu", "amp": "bf16", "channels_last": False, "compile": False, "workers": 0}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_a_checkpoint_written_under_amp_resumes_exactly(small, tmp_path, amp):
    runtime = {"device": "cpu", "amp": amp, "channels_last": True}
    whole = fresh(small)
    train(whole, small, CONFIG, out_dir=tmp_path / "whole", progress=False, evaluate_test=False, **runtime)
    with pytest.raises(KeyboardInterrupt):
        train(fresh(small), small, CONFIG, hooks=[CrashAt(1)], out_dir=tmp_path / "cut", progress=False, evaluate_test=False, **runtime)
    cut = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)
    assert cut["epoch"] == 0
    if amp == "fp16":  # the loss scaler's state travels in the checkpoint
        assert cut["scaler"]["scale"] > 0 and set(cut["scaler"]) >= {"scale", "_growth_tracker"}
    with pytest.raises(InputError, match="another recipe"):  # a resume in another precision is refused
        train(fresh(small), small, CONFIG, out_dir=tmp_path / "cut", resume=True, progress=False, evaluate_test=False, device="cpu")
    resumed = fresh(small)
    train(resumed, small, CONFIG, out_dir=tmp_path / "cut", resume=True, progress=False, evaluate_test=False, **runtime)
    for key, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    conv = next(p for p in resumed.parameters() if p.ndim == 4 and p.shape[1] > 1)  # the stem of 1-channel digits is both
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()


def test_fp32_on_the_cpu_device_matches_the_default(small):
    a, b = fresh(small), fresh(small)
    train(a, small, CONFIG, progress=False, evaluate_test=False)
    train(b, small, CONFIG, progress=False, evaluate_test=False, device="cpu", workers=2)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_the_running_loss_is_read_every_progress_every_steps_only(small, monkeypatch):
    reads = []
    original = loop._NetworkSteps.fields
    monkeypatch.setattr(loop._NetworkSteps, "fields", lambda self: reads.append(self.seen) or original(self))
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 2)
    config = TrainConfig(epochs=2, batch_size=32, seed=0)  # 300 samples: 9 steps of 32 and one of 12 per epoch
    train(fresh(small), small, config, progress=False, evaluate_test=False, device="cpu")
    # per epoch: once when its bar is made (nothing seen yet), then after steps 2, 4, 6, 8, 10
    assert reads == [0, 64, 128, 192, 256, 300] * 2
    reads.clear()
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 3)
    train(fresh(small), small, config, progress=False, evaluate_test=False, device="cpu")
    # after steps 3, 6, 9, and once more at the epoch's end for its last step
    assert reads == [0, 96, 192, 288, 300] * 2


def test_compile_that_fails_falls_back_to_eager_with_one_warning(small, monkeypatch, caplog):
    import torch._dynamo

    def failing_compile(module, **kwargs):
        def run(*args):
            raise torch._dynamo.exc.TorchDynamoException("no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", failing_compile)
    eager, compiled = fresh(small), fresh(small)
    train(eager, small, CONFIG, progress=False, evaluate_test=False, device="cpu")
    with caplog.at_level(logging.WARNING):
        train(compiled, small, CONFIG, progress=False, evaluate_test=False, device="cpu", compile=True)
    warnings = [r.getMessage() for r in caplog.records if "--compile" in r.getMessage()]
    assert len(warnings) == 1 and "no C++ compiler found" in warnings[0] and "without it" in warnings[0]
    for key, value in eager.state_dict().items():
        assert torch.equal(value, compiled.state_dict()[key]), key


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_with_amp_channels_last_and_workers(small, tmp_path):
    placement = Placement()
    model = fresh(small)
    config = TrainConfig(epochs=2, batch_size=64, lr=0.05, seed=0)
    result = train(model, small, config, hooks=[placement], out_dir=tmp_path / "a", progress=False, device="cuda", amp="bf16",
                   channels_last=True, workers=2)
    assert all(math.isfinite(r["train_loss"]) for r in result.history) and result.top1 > 10
    assert placement.seen == {("cpu", "cuda", "cuda", torch.float32, torch.float32, torch.float32)}
    assert next(model.parameters()).device.type == "cuda"
    fp16 = train(fresh(small), small, config, out_dir=tmp_path / "b", progress=False, device="cuda", amp="fp16")
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["scaler"]["scale"] > 0
    assert all(math.isfinite(r["train_loss"]) for r in fp16.history)
