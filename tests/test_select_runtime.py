"""select()'s device and mixed precision: checked before any work, recorded in the manifest, passed to
every training a method runs, and part of the cache keys (amp only: the device changes no key)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from proxy_helpers import TINY_PROXY
from typer.testing import CliRunner

from rlselector import load_dataset, select
from rlselector.cli import app
from rlselector.errors import InputError
from rlselector.selection import proxy, ssl, target
from rlselector.selection.cache import ArtifactCache
from rlselector.selection.proxy import cache_path, run_proxy
from rlselector.train.loop import TrainConfig

FAST_PROXY = replace(TINY_PROXY, width=4, recipe=TrainConfig(epochs=2, batch_size=64), record_epochs=(1, 2))
"""Two epochs of a width-4 ResNet-18 on 200 digits: seconds, even in emulated bf16 on a CPU without bf16 instructions."""
RUNTIME = {"device": "cpu", "amp": "bf16", "channels_last": False, "compile": False, "workers": 0}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=200, seed=0)


class Trained(Exception):
    """Raised by a stand-in train() once it has seen its arguments: the passthrough, without training."""


@pytest.fixture
def seen(monkeypatch):
    """The keyword arguments every training of the stages receives (the stand-in stops the selection there)."""
    calls: list[dict] = []

    def stand_in(*args, **kwargs):
        calls.append(kwargs)
        raise Trained

    for module in (proxy, target, ssl):
        monkeypatch.setattr(module, "train", stand_in)
    return calls


def test_bf16_selection_records_its_runtime(digits):
    selection = select(digits, "el2n", 0.5, 0, progress=False, amp="bf16", device="cpu", proxy_config=FAST_PROXY, seeds=1)
    assert selection.manifest["runtime"] == RUNTIME
    assert selection.manifest["n_kept"] == 100
    # the proxy trained in bf16, and its run answers the same request on any device
    record, _, cached = run_proxy(digits, FAST_PROXY, seed=0, progress=False, runtime={"device": "auto", "amp": "bf16"})
    assert cached and record.meta["amp"] == "bf16"


def test_proxy_key_has_amp_but_not_device(digits, monkeypatch):
    assert FAST_PROXY.key(digits, 0) != FAST_PROXY.key(digits, 0, "bf16")
    assert "amp" not in FAST_PROXY.identity(digits, 0)  # float32 runs keep the keys of the caches made before amp existed
    assert cache_path("c", digits, FAST_PROXY, 0) != cache_path("c", digits, FAST_PROXY, 0, "bf16")
    keys = []

    def stand_in(*args, key, **kwargs):
        keys.append(key)
        raise Trained

    monkeypatch.setattr(proxy, "_train_proxy", stand_in)
    other = replace(FAST_PROXY, width=5)  # never trained in this process: no memory-cache hit
    for runtime in ({"device": "cpu", "amp": "bf16"}, {"device": "auto", "amp": "bf16"}, {"device": "cpu", "amp": "off"}):
        with pytest.raises(Trained):
            run_proxy(digits, other, seed=0, progress=False, runtime=runtime)
    assert keys[0] == keys[1] != keys[2]


def test_artifact_cache_keys_by_amp(digits, tmp_path):
    plain, bf16 = ArtifactCache(tmp_path).path("x", digits, "l", [1]), ArtifactCache(tmp_path, amp="bf16").path("x", digits, "l", [1])
    assert plain != bf16 and "-bf16-" in bf16.name and plain == ArtifactCache(tmp_path, amp="off").path("x", digits, "l", [1])


@pytest.mark.parametrize("option, value", [("amp", "fp8"), ("device", "tpu"), ("workers", -1)])
def test_bad_runtime_refused_before_work(digits, seen, tmp_path, option, value):
    with pytest.raises(InputError, match=f"--{option}"):
        select(digits, "el2n", 0.5, 0, progress=False, proxy_config=FAST_PROXY, out=tmp_path / "sel", **{option: value})
    assert not seen and not (tmp_path / "sel").exists()


@pytest.mark.parametrize("method, params", [
    ("cover-static", {"epochs": 1}),  # the target network, no --features
    ("rl-selector", {"epochs": 1}),
    ("prototypes", {"embedding": "ssl"}),  # the self-supervised encoder
    ("el2n", {"seeds": 1}),  # the proxy
])
def test_every_training_gets_the_runtime(digits, seen, method, params):
    with pytest.raises(Trained):
        select(digits, method, 0.5, 0, progress=False, proxy_config=replace(FAST_PROXY, width=6), **RUNTIME, **params)
    assert len(seen) == 1 and {name: seen[0][name] for name in RUNTIME} == RUNTIME


def test_cli_select_and_quickstart_take_the_runtime_options(tmp_path):
    runner = CliRunner()
    select_help = runner.invoke(app, ["select", "--help"]).output
    for option in ("--device", "--amp", "--channels-last", "--compile", "--workers"):
        assert option in select_help, option
    quickstart_help = runner.invoke(app, ["quickstart", "--help"]).output
    assert "--device" in quickstart_help and "--amp" in quickstart_help
    bad = runner.invoke(app, ["select", "--data", "digits", "--method", "random", "--amp", "fp8", "--out", str(tmp_path / "s"), "--quiet"])
    assert bad.exit_code == 2 and "--amp" in bad.output and not (tmp_path / "s").exists()


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_rl_selector_selects_on_a_gpu(digits):
    """Target, feature bank, cover blocks and agent on the GPU: a valid, finite selection."""
    import numpy as np

    selection = select(digits, "rl-selector", 0.5, 0, progress=False, device="cuda", amp="bf16", recipe="cpu-tiny", epochs=3)
    assert np.isfinite(selection.scores).all() and abs(selection.manifest["ratio_achieved"] - 0.5) <= 0.01
    assert selection.manifest["runtime"]["device"] == "cuda"


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_a_proxy_method_selects_on_a_gpu(digits):
    """The proxy trains on the GPU and its recorder sums the dynamics there: the same kind of record."""
    import numpy as np

    selection = select(digits, "el2n", 0.5, 0, progress=False, device="cuda", proxy_config=FAST_PROXY, seeds=1)
    assert np.isfinite(selection.scores).all() and selection.manifest["runtime"]["device"] == "cuda"
