"""The loop API (rlselector.SelectionLoop) and its observers: inside a plain PyTorch loop it makes the
selection select() makes; a dynamics baseline fed from the loop equals the proxy stage's; the
recorder's numbers by hand; the examples run."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rlselector import SelectionLoop, load_dataset, load_selection, select
from rlselector.data.transforms import BatchTransform
from rlselector.errors import InputError
from rlselector.selection.observe import DynamicsRecorder
from rlselector.selection.proxy import ProxyConfig, run_proxy
from rlselector.train import TrainConfig, build_for, train_model
from rlselector.train.evaluate import forward_split
from rlselector.train.distributed import DistributedContext
from rlselector.train.loop import _augment_generator, epoch_batches

ROOT = Path(__file__).resolve().parents[1]
RECIPE = TrainConfig(epochs=3, batch_size=64, lr=0.05, weight_decay=5e-4)
"""The cpu-tiny recipe (ResNet-18 width 8) with 3 epochs."""


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits", limit=300, seed=0)


def plain_loop(data, loop, *, recipe=RECIPE, seed=0, seen=None):
    """A plain PyTorch loop: the recipe's model, SGD and cosine schedule, and the batches and
    augmentation of rlselector's own loop (so both train the same network bit for bit)."""
    model = build_for(data, "resnet18", 8, seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)
    transform = BatchTransform.for_dataset(data, augment=recipe.augment)
    for epoch in range(recipe.epochs):
        model.train()
        generator = _augment_generator(seed, epoch, 0)
        for index in epoch_batches(len(data), recipe.batch_size, epoch, seed, DistributedContext()):
            images, labels = data.train.batch(index)
            features = model.features(transform(images, generator))
            logits = model.classifier(features)
            losses = F.cross_entropy(logits, labels, reduction="none")
            optimizer.zero_grad(set_to_none=True)
            losses.mean().backward()
            optimizer.step()
            loop.observe(index, features=features, logits=logits, labels=labels)
            if seen is not None:
                seen.setdefault(epoch + 1, {}).update({int(i): row for i, row in zip(index, logits.detach())})
        loop.end_epoch(lr=optimizer.param_groups[0]["lr"])
        schedule.step()
    return model


def test_rl_selector_in_a_plain_loop_writes_select_s_selection(data, tmp_path):
    # a loop given labels has no images to read the input's geometry from: both read the eval-mode features only
    reference = select(data, "rl-selector", ratio=0.5, seed=0, recipe="cpu-tiny", epochs=3, readout_features="eval", out=tmp_path / "select",
                       progress=False)
    loop = SelectionLoop(data.train.labels, 0.5, "rl-selector", seed=0, recipe="cpu-tiny", epochs=3, readout_features="eval", progress=False)
    model = plain_loop(data, loop)
    # select() reads its decision off one eval-mode pass without augmentation; the loop takes the user's
    clean, _ = forward_split(model, data.train, BatchTransform.for_dataset(data, augment=False))
    ours = loop.finish(out=tmp_path / "loop", readout_features=clean)
    loaded = load_selection(tmp_path / "loop")
    np.testing.assert_array_equal(loaded.indices, reference.indices)
    np.testing.assert_array_equal(loaded.scores, reference.scores)
    np.testing.assert_array_equal(loaded.raw_scores, reference.raw_scores)
    for key in ("method", "params", "n", "n_kept", "per_class", "natural_ratio", "band_enforced", "agent", "agent_passes", "readout"):
        assert ours.manifest[key] == reference.manifest[key], key
    assert ours.manifest["target"] == {"model": "user's own", "width": None, "epochs": 3}
    assert [r["natural_ratio"] for r in ours.manifest["diagnostics"]] == [r["natural_ratio"] for r in reference.manifest["diagnostics"]]
    # labels only: the dataset block says what the loop knows
    block = loaded.manifest["dataset"]
    assert block["fingerprint"].startswith("labels-sha256:") and block["num_classes"] == 10 and block["name"] == "training-loop"
    assert (tmp_path / "loop" / "diagnostics.jsonl").exists() and not (tmp_path / "loop" / "work").exists()


def test_a_dynamics_baseline_fed_by_the_loop_equals_the_proxy_stage(data):
    config = ProxyConfig(model="resnet18", width=8, recipe=RECIPE, record_epochs=(3,))
    reference = select(data, "forgetting", ratio=0.4, seed=0, proxy_config=config, progress=False)
    proxy, _, _ = run_proxy(data, config, seed=0, progress=False)  # the same run, from the memory cache
    loop = SelectionLoop(data.train.label_array, 0.4, "forgetting", seed=0, record_epochs=[3], progress=False)
    seen = {}
    plain_loop(data, loop, seen=seen)
    record = loop.dynamics()
    for name in ("loss", "correct", "margin", "prob_margin"):
        np.testing.assert_array_equal(getattr(record, name), getattr(proxy, name), err_msg=name)
    np.testing.assert_allclose(record.lr, proxy.lr)
    np.testing.assert_allclose(record.lr, [0.05, 0.0375, 0.0125])  # cosine over 3 epochs
    # no eval pass in a user's loop: each sample's last training forward of epoch 3 stands in
    np.testing.assert_array_equal(record.logits_at(3), torch.stack([seen[3][i] for i in range(len(data))]).numpy())
    assert "last training forward" in record.meta["logits_features"]
    ours = loop.finish()
    np.testing.assert_array_equal(ours.indices, reference.indices)
    np.testing.assert_array_equal(ours.scores, reference.scores)


def test_a_features_method_reads_the_latest_features(data):
    rng = np.random.default_rng(0)
    first, last = rng.normal(size=(2, len(data), 5)).astype(np.float32)
    loop = SelectionLoop(data.train.label_array, 0.3, "herding", seed=1, progress=False)
    for epoch_features in (first, last):
        for index in np.array_split(rng.permutation(len(data)), 7):
            loop.observe(torch.from_numpy(index), features=torch.from_numpy(epoch_features[index]))
        loop.end_epoch()
    ours = loop.finish()
    reference = select(data, "herding", ratio=0.3, seed=1, features=last, progress=False)
    np.testing.assert_array_equal(ours.indices, reference.indices)
    assert ours.manifest["features"] == "user"


def test_the_project_s_loop_feeds_the_same_object(data, tmp_path):
    from rlselector.train import train

    loop = SelectionLoop(data, 0.5, "el2n", seed=0, progress=False)
    model = build_for(data, "resnet18", 8, 0)
    train(model, data, TrainConfig(epochs=2, batch_size=64, lr=0.05), hooks=[loop], progress=False)
    record = loop.dynamics()
    assert record.epochs == 2 and record.logit_epochs == [0, 1, 2] and record.lr is None  # epoch 0 too: the model is at hand
    assert "eval-mode" in record.meta["logits_features"]
    # with the model at hand the snapshot is the eval pass: logits = classifier(features), exactly
    np.testing.assert_allclose(record.logits_at(2), model.classifier(torch.tensor(record.features_at(2))).detach().numpy(), rtol=1e-5, atol=1e-5)
    sel = loop.finish(out=tmp_path / "sel")
    assert sel.fingerprint == data.fingerprint and len(sel.subset(data)) == 150  # a Dataset given: its own fingerprint


# --- the recorder by hand ---------------------------------------------------------------------
def test_recorder_numbers_by_hand():
    recorder = DynamicsRecorder(np.array([0, 1, 1]), 2, record_epochs=None)
    logits = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    recorder.observe(torch.tensor([0, 1, 2]), logits=logits)
    recorder.observe(torch.tensor([1]), logits=torch.tensor([[0.0, 1.0]]))  # sample 1 twice: averaged
    recorder.end_epoch()
    record = recorder.record({}, lr=[0.1], source="hand")
    margins = np.array([2.0, (-1.0 + 1.0) / 2, 3.0])
    np.testing.assert_allclose(record.margin[0], margins)
    p = lambda m: np.tanh(m / 2)  # p_y − p_other for two classes, logit gap m  # noqa: E731
    np.testing.assert_allclose(record.prob_margin[0], [p(2.0), (p(-1.0) + p(1.0)) / 2, p(3.0)], rtol=1e-6)
    np.testing.assert_allclose(record.loss[0], [np.log1p(np.exp(-2.0)), (np.log1p(np.exp(1.0)) + np.log1p(np.exp(-1.0))) / 2, np.log1p(np.exp(-3.0))], rtol=1e-6)
    assert record.correct[0].tolist() == [True, True, True]  # sample 1: one of two forwards right counts (ties keep)
    np.testing.assert_array_equal(record.logits_at(1), [[2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])  # its latest forward
    assert record.lr.tolist() == [0.1]


def test_recorder_uses_the_user_s_losses_and_refuses_what_does_not_fit():
    recorder = DynamicsRecorder(np.array([0, 1]), 2, record_epochs=[])
    with pytest.raises(InputError, match="needs logits"):
        recorder.observe(torch.tensor([0, 1]), features=torch.zeros(2, 3))
    with pytest.raises(InputError, match="labels disagree"):
        recorder.observe(torch.tensor([0, 1]), logits=torch.zeros(2, 2), labels=torch.tensor([1, 1]))
    with pytest.raises(InputError, match=r"indices must lie in \[0, 2\)"):
        recorder.observe(torch.tensor([0, 2]), logits=torch.zeros(2, 2))
    with pytest.raises(InputError, match="3 columns but there are 2 classes"):
        recorder.observe(torch.tensor([0, 1]), logits=torch.zeros(2, 3))
    with pytest.raises(InputError, match="observed no minibatch"):
        recorder.end_epoch()
    recorder.observe(torch.tensor([0]), logits=torch.zeros(1, 2), losses=torch.tensor([7.0]))
    recorder.end_epoch()
    with pytest.raises(InputError, match="sample 1 was never observed in epoch 1"):
        recorder.record({}, source="hand")
    recorder.observe(torch.tensor([1]), logits=torch.zeros(1, 2))
    with pytest.raises(InputError, match="epoch 2 was observed but not ended"):
        recorder.record({}, source="hand")


def test_loop_refusals(data, tmp_path):
    labels = data.train.label_array
    with pytest.raises(InputError, match="unknown selection method"):
        SelectionLoop(labels, 0.5, "nope")
    with pytest.raises(InputError, match="init_from fine-tunes"):
        SelectionLoop(labels, 0.5, "rl-selector", init_from=str(tmp_path))
    with pytest.raises(InputError, match="record_epochs must be epochs ≥ 1"):
        SelectionLoop(labels, 0.5, "el2n", record_epochs=[0])
    with pytest.raises(InputError, match="only 3 class names"):
        SelectionLoop(labels, 0.5, "random", classes=["a", "b", "c"])
    with pytest.raises(InputError, match="labels must be a 1-D array of integers"):
        SelectionLoop(labels.astype(float), 0.5, "random")
    loop = SelectionLoop(labels, 0.5, "forgetting", progress=False)
    with pytest.raises(InputError, match="lr must be a finite"):
        loop.end_epoch(lr=float("nan"))
    for lr in (0.1, None):
        loop.observe(np.arange(len(labels)), logits=torch.zeros(len(labels), 10))
        loop.end_epoch(lr=lr)
    with pytest.raises(InputError, match=r"lr= in epochs \[1\] but not in \[2\]"):
        loop.finish()
    loop = SelectionLoop(labels, 0.5, "random", seed=3, progress=False)
    with pytest.raises(InputError, match="readout_features is read by rl-selector's decision only"):
        loop.finish(readout_features=np.zeros((len(labels), 4), dtype=np.float32))
    sel = loop.finish(out=tmp_path / "random")
    assert sel.manifest["n_kept"] == 150
    with pytest.raises(InputError, match="already finished"):
        loop.observe([0])
    with pytest.raises(InputError, match="a selection already exists"):
        SelectionLoop(labels, 0.5, "random").finish(out=tmp_path / "random")


def test_labels_fingerprint_covers_labels_and_sample_ids(tmp_path):
    labels = np.array([0, 1, 0, 1, 2, 2])
    ids = [f"img{i}.png" for i in range(6)]

    def fingerprint(**kwargs):
        return SelectionLoop(kwargs.pop("labels", labels), 0.5, "random", progress=False, **kwargs).ctx.dataset.fingerprint

    base = fingerprint(sample_ids=ids)
    assert base == fingerprint(sample_ids=list(ids))
    assert len({base, fingerprint(), fingerprint(sample_ids=ids[::-1]), fingerprint(labels=labels[::-1], sample_ids=ids)}) == 4
    sel = SelectionLoop(labels, 0.5, "random", sample_ids=ids, classes=["cat", "dog", "eel"], name="pets", progress=False).finish(out=tmp_path / "s")
    loaded = load_selection(tmp_path / "s")
    assert loaded.manifest["dataset"]["name"] == "pets" and set(loaded.manifest["per_class"]) == {"cat", "dog", "eel"}
    assert loaded.sample_ids.tolist() == [ids[i] for i in sel.indices]
    named = fingerprint(sample_ids=ids, classes=["cat", "dog", "eel"])  # class names count too
    assert named != base and json.loads((tmp_path / "s" / "selection.json").read_text())["dataset"]["fingerprint"] == named


# --- the examples run (small) -----------------------------------------------------------------
@pytest.mark.parametrize("script, method", [("own_loop.py", "rl-selector"), ("own_loop.py", "el2n"), ("own_model.py", "forgetting")])
def test_examples_run(script, method, tmp_path):
    out = tmp_path / "sel"
    subprocess.run([sys.executable, str(ROOT / "examples" / script), "--method", method, "--epochs", "2", "--limit", "200", "--out", str(out)],
                   check=True, capture_output=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    sel = load_selection(out)
    assert sel.manifest["method"] == method and abs(sel.manifest["n_kept"] - 100) <= 2


def _first_batch_norm_input_mean(model, data):
    """Per-channel mean of the first batch-norm layer's input over the training images without
    augmentation, by hand (a hook on a no-grad pass)."""
    layer = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach().double()))
    transform = BatchTransform.for_dataset(data, augment=False)
    model.eval()
    with torch.no_grad():
        for rows in torch.arange(len(data)).split(100):
            model(transform(data.train.batch(rows)[0]))
    handle.remove()
    return layer, torch.cat(seen).mean(dim=(0, 2, 3)).float()


@pytest.mark.parametrize("recalibrate", [True, False])
def test_recalibrated_batch_norm_holds_the_training_sets_average(data, recalibrate):
    """With recalibrate_bn the running mean is the plain average over the un-augmented training images
    (batches of 50 divide the 300 images, so the average of batch means is the mean); without it, the
    training's moving average, which is not."""
    config = replace(RECIPE, epochs=1, batch_size=50, recalibrate_bn=recalibrate)
    model, _ = train_model(data, model="resnet18", width=8, config=config, progress=False)
    layer, expected = _first_batch_norm_input_mean(model, data)
    close = torch.allclose(layer.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert close is recalibrate, (layer.running_mean[:4], expected[:4])


def test_recalibration_keeps_the_keys_of_recipes_without_it():
    assert "recalibrate_bn" not in RECIPE.identity()
    assert replace(RECIPE, recalibrate_bn=True).identity() == {**RECIPE.identity(), "recalibrate_bn": True}
    with pytest.raises(InputError, match="recalibrate_bn must be true or false"):
        replace(RECIPE, recalibrate_bn="yes").validate()
