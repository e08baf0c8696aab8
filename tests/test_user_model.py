"""The user's own model: a factory wherever the project trains a network, features read at the
input of its last nn.Linear (the documented feature hook), and --model FILE.py:FUNCTION."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from rlselector import load_dataset, select
from rlselector.cli import app
from rlselector.errors import InputError
from rlselector.models import as_classifier, load_factory
from rlselector.train import TrainConfig, train_model

SMALL_CNN = """
import torch
from torch import nn

def build(in_channels, num_classes):
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, num_classes),
    )
"""


@pytest.fixture(scope="module")
def factory_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "my_net.py"
    path.write_text(textwrap.dedent(SMALL_CNN))
    return path


def test_the_feature_hook_reads_the_input_of_the_last_linear(factory_file):
    net = as_classifier(load_factory(f"{factory_file}:build")(in_channels=1, num_classes=10))
    x = torch.randn(5, 1, 8, 8)
    inner = net.module
    expected_features = inner[:-1](x)  # everything before the head
    torch.testing.assert_close(net.features(x), expected_features)
    torch.testing.assert_close(net.classifier(net.features(x)), net(x))
    assert net.feature_dim == 16 and net.classifier is inner[-1]


def test_a_model_that_keeps_the_contract_is_used_as_is():
    class Own(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.classifier = nn.Linear(4, 3), nn.Linear(3, 2)

        def features(self, x):
            return self.body(x)

        def forward(self, x):
            return self.classifier(self.features(x))

    own = Own()
    assert as_classifier(own) is own and own.feature_dim == 3


@pytest.mark.parametrize(
    "module, fragment",
    [(nn.Sequential(nn.Conv2d(1, 2, 3)), "no nn.Linear head"), ("not a module", "must return a torch nn.Module")],
)
def test_unusable_models_are_refused(module, fragment):
    with pytest.raises(InputError, match=fragment):
        as_classifier(module)


def test_train_and_select_with_the_users_factory(factory_file, tmp_path):
    data = load_dataset("digits", limit=300, seed=0)
    factory = load_factory(f"{factory_file}:build")
    net, result = train_model(data, model=factory, width=None, config=TrainConfig(epochs=2, batch_size=32, lr=0.05), progress=False)
    assert result.top1 is not None and 0 <= result.top1 <= 100
    again, _ = train_model(data, model=factory, width=None, config=TrainConfig(epochs=2, batch_size=32, lr=0.05), progress=False)
    for a, b in zip(net.parameters(), again.parameters()):  # seeded: the same weights
        assert torch.equal(a, b)
    sel = select(data, "cover-static", 0.5, 0, model=factory, epochs=1, recipe="cpu-tiny", out=tmp_path / "sel", progress=False)
    assert sel.manifest["n_kept"] == 150
    with pytest.raises(InputError, match="trains no target network"):
        select(data, "random", 0.5, 0, model=factory, progress=False)
    with pytest.raises(InputError, match="SelectionLoop"):
        select(data, "el2n", 0.5, 0, model=factory, progress=False)
    rl = select(data, "rl-selector", 0.5, 0, model=factory, epochs=2, recipe="cpu-tiny", progress=False)
    assert rl.manifest["target"]["model"].startswith("user: ") and rl.manifest["target"]["model"].endswith(":build")
    with pytest.raises(InputError, match="takes a factory"):
        select(data, "cover-static", 0.5, 0, model="resnet18", progress=False)


def test_model_option_on_the_command_line(factory_file, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data", "digits", "--limit", "300", "--model", f"{factory_file}:build", "--epochs", "1",
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "final-epoch test accuracy" in result.output
    for spec, fragment in ((f"{factory_file}:nothing", "defines no callable 'nothing'"), (f"{tmp_path}/absent.py:build", "not found")):
        bad = runner.invoke(app, ["train", "--data", "digits", "--model", spec, "--out", str(tmp_path / "x"), "--quiet"])
        assert bad.exit_code == 2 and fragment in " ".join(bad.output.split())
