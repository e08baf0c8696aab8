"""Declared method parameters: every value is typed and checked once, by ``make_params``.

Rows give ``params`` either as ``-p`` text (a list, read as the command line reads it) or as Python
values (a dict).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rlselector.api import get_method, list_methods
from rlselector.cli import _parse_params, app
from rlselector.errors import InputError
from rlselector.selection.method import params_record
from rlselector.selection.policies import POLICIES


def make(method: str, params: list[str] | dict):
    return get_method(method).make_params(**(_parse_params(params) if isinstance(params, list) else params))


@pytest.mark.parametrize(
    "method, params, message",
    [
        # wrong types (a bool is never a number)
        ("rl-selector", ["epochs=five"], "rl-selector: parameter 'epochs' must be an integer ≥ 1 (or none), got 'five'; e.g. -p epochs=5"),
        ("el2n", {"seeds": 2.5}, "el2n: parameter 'seeds' must be an integer ≥ 1 (or none), got 2.5; e.g. -p seeds=10"),
        ("el2n", {"seeds": True}, "parameter 'seeds' must be an integer ≥ 1 (or none), got True"),
        ("glister", {"lr": True}, "parameter 'lr' must be a number > 0, got True"),
        ("herding", ["per_class=maybe"], "parameter 'per_class' must be true or false, got 'maybe'; e.g. -p per_class=true"),
        ("herding", {"per_class": 1}, "parameter 'per_class' must be true or false, got 1"),
        ("moso", ["epochs=3"], "parameter 'epochs' must be a list of integers ≥ 0 (or none), got 3; e.g. -p \"epochs=[5]\""),
        ("rl-selector", {"init_from": 3}, "parameter 'init_from' must be a string (or none), got 3; e.g. -p init_from=runs/rl-50"),
        # out of range
        ("rl-selector", ["epochs=0"], "parameter 'epochs' must be an integer ≥ 1 (or none), got 0"),
        ("glister", ["val_fraction=1.5"], "parameter 'val_fraction' must be a number in (0, 1), got 1.5; e.g. -p val_fraction=0.1"),
        ("ccs", ["beta=1"], "parameter 'beta' must be a number in [0, 1) (or none), got 1; e.g. -p beta=0.5"),
        ("cgscore", ["chunk_size=10000"], "parameter 'chunk_size' must be an integer in [1, 8192], got 10000"),
        ("d2", ["gamma_forward=nan"], "parameter 'gamma_forward' must be a number ≥ 0, got 'nan'"),
        ("prototypes", {"hard_threshold": -0.1}, "parameter 'hard_threshold' must be a number in [0, 1], got -0.1"),
        # unknown choices, the shared policy among them
        ("kcenter", ["start=middle"], "parameter 'start' must be one of 'random', 'central', got 'middle'; e.g. -p start=random"),
        ("el2n", ["policy=best"], f"parameter 'policy' must be one of {', '.join(map(repr, POLICIES))}, got 'best'"),
        ("prototypes", ["policy=best"], "parameter 'policy' must be one of 'auto', 'keep-highest',"),
        ("rl-selector", ["recipe=huge"], "parameter 'recipe' must be one of 'cpu', 'cpu-tiny',"),
        ("cover-static", ["epsilon_rule=max"], "parameter 'epsilon_rule' must be one of"),
        # unknown parameters
        ("el2n", ["sedes=2"], "el2n has no parameter(s) ['sedes'] (did you mean seeds?); known: epoch, seeds, policy"),
        ("random", {"k": 1}, "random has no parameter(s) ['k']; known: (none)"),
        # select()'s own arguments
        ("el2n", ["seed=3"], "-p seed=3: 'seed' is not a method parameter but an option of select; use --seed"),
        ("el2n", ["class-balanced=true"], "use --class-balanced"),
        ("el2n", ["dataset=mnist"], "use --data"),
        # the agent dict, field by field
        ("rl-selector", ["agent={learning_rate: fast}"],
         "rl-selector: parameter 'agent' field 'learning_rate' must be a number, got 'fast'; e.g. -p \"agent={learning_rate: 0.001}\""),
        ("rl-selector", ["agent={learning_rat: 3e-4}"], "parameter 'agent' has no AgentConfig field(s) ['learning_rat'] (did you mean learning_rate?)"),
        ("rl-selector", ["agent={policy: greedy}"], "parameter 'agent' field 'policy' must be one of 'bernoulli', 'gaussian-literal', got 'greedy'"),
        ("rl-selector", ["agent={hidden_sizes: [64]}"], "parameter 'agent' field 'hidden_sizes' must be a list of 2 integers, got [64]"),
        ("rl-selector", ["agent={updates_per_step: true}"], "parameter 'agent' field 'updates_per_step' must be an integer, got True"),
        ("rl-selector", ["agent=fast"], "parameter 'agent' must be a mapping of AgentConfig fields, got 'fast'; e.g. -p \"agent={learning_rate: 0.0003}\""),
        ("rl-selector", ["agent={learning_rate: 3e-4"], "-p agent={learning_rate: 3e-4: the value is not valid YAML"),
    ],
)
def test_bad_parameters_are_refused_with_what_they_must_be(method, params, message):
    with pytest.raises(InputError, match=re.escape(message)):
        make(method, params)


@pytest.mark.parametrize(
    "method, params, expected",
    [
        ("glister", ["lr=3e-4"], {"lr": 3e-4}),  # YAML reads 3e-4 as text
        ("glister", ["lr=1"], {"lr": 1.0}),  # an int where a float is declared
        ("cgscore", {"negatives": 2, "chunk_size": "64", "center": "false"}, {"negatives": 2.0, "chunk_size": 64, "center": False}),
        ("cover-static", {"round_size": "1e3", "epsilon_quantile": np.float32(0.25)}, {"round_size": 1000, "epsilon_quantile": 0.25}),
        ("el2n", {"seeds": np.int64(2), "epoch": 5.0}, {"seeds": 2, "epoch": 5}),
        ("ccs", ["beta=0", "score=el2n"], {"beta": 0.0, "score": "el2n"}),
        ("rl-selector", ["epochs=none", "finetune_epochs=3"], {"epochs": None, "finetune_epochs": 3}),
        ("rl-selector", {"init_from": Path("runs/x")}, {"init_from": "runs/x"}),
        ("moso", ["epochs=[2, 4]"], {"epochs": [2, 4]}),
        ("prototypes", ["policy=auto"], {"policy": "auto"}),
        ("moderate", ["policy=keep-lowest"], {"policy": "keep-lowest"}),
        ("rl-selector", ["agent={learning_rate: 3e-4, hidden_sizes: [64, 32], gamma: 0}"],
         {"agent": {"learning_rate": 3e-4, "hidden_sizes": (64, 32), "gamma": 0.0}}),
        ("rl-selector", ["agent={low_ratio_cover_weight: null, cover_weight: 1}"],
         {"agent": {"low_ratio_cover_weight": None, "cover_weight": 1.0}}),
    ],
)
def test_values_are_coerced_to_their_declared_types(method, params, expected):
    made = make(method, params)
    for name, value in expected.items():
        got = getattr(made, name)
        if isinstance(value, dict):  # rl-selector's agent dict holds every field of the resolved configuration
            assert all(got[key] == item and type(got[key]) is type(item) for key, item in value.items()), got
        else:
            assert got == value and type(got) is type(value), (name, got)


def test_the_agent_dict_reaches_the_agent_typed():
    method = get_method("rl-selector")
    config = method(make("rl-selector", ["agent={learning_rate: 3e-4}"])).agent_config()
    assert config.learning_rate == 3e-4 and isinstance(config.learning_rate, float)


@pytest.mark.parametrize("method", [m.name for m in list_methods()])
def test_defaults_fit_their_declarations(method):
    cls = get_method(method)
    defaults = cls.make_params()  # Params() with every default checked (and rl-selector's agent configuration resolved)
    assert cls.make_params(**params_record(defaults)) == defaults


def test_the_command_line_points_seed_at_its_option(tmp_path):
    result = CliRunner().invoke(app, ["select", "--data", "digits", "--method", "random", "-p", "seed=3", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "use --seed" in " ".join(result.output.split())  # rich wraps long lines
    assert not (tmp_path / "x").exists()
