import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import load_dataset, select
from rlselector.methods.grand import GraNd
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord
from rlselector.selection.proxy import proxy_seed, run_proxy

INIT_PROXY = dataclasses.replace(TINY_PROXY, record_epochs=(0, 1, 2, 3))
"""The cheap proxy, also recording the initial weights (GraNd's epoch 0)."""


class TestGraNd(MethodContract):
    method = "grand"
    select_kwargs = {"proxy_config": INIT_PROXY}
    params = {"seeds": 2}

    def test_manifest_states_the_approximation(self, selection):
        assert selection.manifest["gradient"].startswith("last layer")
        assert selection.manifest["epoch"] == 0 and selection.manifest["proxy_runs"] == 2


def test_defaults_are_the_papers():
    assert GraNd.Params().epoch == 0 and GraNd.make_params().seeds is None  # None = 10 proxy runs


def test_at_initialisation_averaged_over_runs_equals_the_reference():
    # data_diet: the mean over runs of the per-sample gradient norm at checkpoint 0, the highest kept
    data = load_dataset("digits", limit=300, seed=0)
    sel = select(data, method="grand", ratio=0.3, seed=0, seeds=3, proxy_config=INIT_PROXY, progress=False)
    runs = [run_proxy(data, INIT_PROXY, seed=proxy_seed(0, i), progress=False)[0] for i in range(3)]
    y = data.train.label_array
    norms = []
    for run in runs:
        h, z = np.asarray(run.features_at(0), np.float64), np.asarray(run.logits_at(0), np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        r = p / p.sum(1, keepdims=True) - np.eye(10)[y]
        grads = np.concatenate([r, (r[:, :, None] * h[:, None, :]).reshape(len(y), -1)], axis=1)  # DeepCore's layout
        norms.append(np.linalg.norm(grads, axis=1))
    reference = np.argsort(-np.mean(norms, axis=0), kind="stable")[:90]
    kept = set(sel.indices.tolist())
    assert len(kept & set(reference.tolist())) / len(kept | set(reference.tolist())) >= 0.99
    assert sel.manifest["epoch"] == 0
    # the initial weights differ from those of epoch 1: a GraNd read at epoch 1 is another subset
    later = select(data, method="grand", ratio=0.3, seed=0, seeds=3, epoch=1, proxy_config=INIT_PROXY, progress=False)
    assert not np.array_equal(later.indices, sel.indices)


def test_grad_norm_by_hand():
    # h = (1, 0), logits (0, 0), label 0: r = (-1/2, 1/2), ‖r‖ = 1/√2, ‖[h, 1]‖ = √2 → 1
    # h = (3, 4), same logits: ‖[h, 1]‖ = √26 → √13
    features = np.array([[1.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(scores.grad_norms(features, np.zeros((2, 2)), np.array([0, 0])), [1.0, np.sqrt(13.0)])


def test_grad_norm_equals_autograd_on_a_linear_layer():
    generator = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(3, 4, generator=generator, dtype=torch.float64))
        layer.bias.copy_(torch.randn(3, generator=generator, dtype=torch.float64))
    h = torch.randn(6, 4, generator=generator, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    expected = []
    for i in range(len(h)):
        loss = F.cross_entropy(layer(h[i : i + 1]), y[i : i + 1])
        grad_w, grad_b = torch.autograd.grad(loss, [layer.weight, layer.bias])
        expected.append(torch.sqrt((grad_w**2).sum() + (grad_b**2).sum()).item())
    logits = layer(h).detach().numpy()
    np.testing.assert_allclose(scores.grad_norms(h.numpy(), logits, y.numpy()), expected, rtol=1e-10)


def test_select_keeps_largest_gradient_from_given_dynamics():
    data = toy_dataset([0, 0, 1])
    features = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    # sample 2: h = 0 so ‖[h, 1]‖ = 1; logits (0, 0), label 1 → ‖r‖ = 1/√2 → 0.707
    record = ProxyRecord(
        loss=np.ones((1, 3)), correct=np.zeros((1, 3), dtype=bool),
        logits={0: np.zeros((3, 2)), 1: np.ones((3, 2))}, features={0: features, 1: 0 * features}, source="hand-made",
    )
    sel = select(data, method="grand", ratio=2 / 3, seed=0, dynamics=record, progress=False)  # epoch 0, one run
    assert sel.manifest["epoch"] == 0 and sel.manifest["proxy_runs"] == 1
    np.testing.assert_allclose(sel.raw_scores, [1.0, np.sqrt(13.0), np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_array_equal(sel.indices, [0, 1])


def test_the_default_proxy_serves_epoch_zero():
    # validation only (no training): the default proxy records the initial weights, so the default passes
    from rlselector.selection.method import SelectionContext

    ctx = SelectionContext(dataset=load_dataset("digits", limit=300, seed=0), ratio=0.3, seed=0)
    GraNd(GraNd.make_params()).validate(ctx)
