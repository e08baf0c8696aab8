import numpy as np
import torch
import torch.nn.functional as F

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord


class TestGraNd(MethodContract):
    method = "grand"
    select_kwargs = {"proxy_config": TINY_PROXY}

    def test_manifest_states_the_approximation(self, selection):
        assert selection.manifest["gradient"].startswith("last layer")
        assert selection.manifest["epoch"] == 1


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
        logits={1: np.zeros((3, 2))}, features={1: features}, source="hand-made",
    )
    sel = select(data, method="grand", ratio=2 / 3, seed=0, dynamics=record, progress=False)
    np.testing.assert_allclose(sel.raw_scores, [1.0, np.sqrt(13.0), np.sqrt(0.5)], rtol=1e-6)
    np.testing.assert_array_equal(sel.indices, [0, 1])
