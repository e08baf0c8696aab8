import numpy as np
import pytest

from method_contract import MethodContract
from proxy_helpers import TINY_PROXY, toy_dataset
from rlselector import select
from rlselector.errors import InputError
from rlselector.selection import scores
from rlselector.selection.dynamics import ProxyRecord


class TestEL2N(MethodContract):
    method = "el2n"
    select_kwargs = {"proxy_config": TINY_PROXY}
    params = {"seeds": 2}

    def test_manifest_names_epoch(self, selection):
        # TINY_PROXY records epochs 1, 2, 3: the early one (≈20 % of 3 epochs, at least 1) is epoch 1
        assert selection.manifest["epoch"] == 1
        assert selection.manifest["raw_score"].startswith("el2n")


def test_el2n_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0], [0.0, np.log(3.0)]])
    # softmax (1/2, 1/2), (3/4, 1/4), (1/4, 3/4); label 0 → residuals (-1/2, 1/2), (-1/4, 1/4), (-3/4, 3/4)
    np.testing.assert_allclose(scores.el2n(logits, np.array([0, 0, 0])), [np.sqrt(0.5), np.sqrt(0.125), np.sqrt(1.125)])
    # three classes, uniform prediction, label 2: (1/3, 1/3, -2/3) → sqrt(6)/3
    np.testing.assert_allclose(scores.el2n(np.zeros((1, 3)), np.array([2])), [np.sqrt(6) / 3])


def _record():
    labels = np.array([0, 0, 1, 1])
    early = np.array([[0.0, 0.0], [np.log(3.0), 0.0], [0.0, np.log(3.0)], [np.log(3.0), 0.0]])
    late = -early  # reverses the ranking: used only when epoch=2 is asked for
    record = ProxyRecord(
        loss=np.ones((2, 4)), correct=np.ones((2, 4), dtype=bool), logits={1: early, 2: late}, source="hand-made"
    )
    return toy_dataset(labels), record


def test_select_keeps_highest_el2n_from_given_dynamics():
    data, record = _record()
    sel = select(data, method="el2n", ratio=0.5, seed=0, dynamics=record, progress=False)
    # epoch 1: sample 0 → sqrt(.5)=0.707, 1 → sqrt(.125)=0.354, 2 (label 1, p1=3/4) → 0.354, 3 (label 1, p1=1/4) → 1.061
    np.testing.assert_allclose(sel.raw_scores, [np.sqrt(0.5), np.sqrt(0.125), np.sqrt(0.125), np.sqrt(1.125)])
    np.testing.assert_array_equal(sel.indices, [0, 3])
    late = select(data, method="el2n", ratio=0.25, seed=0, dynamics=record, epoch=2, progress=False)
    # epoch 2 logits are negated: sample 1 (label 0, p0=1/4) and 2 (label 1, p1=1/4) score 1.061; ties → lower index
    np.testing.assert_array_equal(late.indices, [1])
    lowest = select(data, method="el2n", ratio=0.5, seed=0, dynamics=record, policy="keep-lowest", progress=False)
    np.testing.assert_array_equal(lowest.indices, [1, 2])


def test_unrecorded_epoch_and_seeds_with_user_dynamics_refused(tmp_path):
    data, record = _record()
    with pytest.raises(InputError, match="logits at epoch 7"):
        select(data, method="el2n", ratio=0.5, dynamics=record, epoch=7, out=tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="seeds=2"):
        select(data, method="el2n", ratio=0.5, dynamics=record, seeds=2, out=tmp_path / "b", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_seeds_average_over_proxy_runs():
    from rlselector import load_dataset
    from rlselector.selection.proxy import proxy_seed, run_proxy

    data = load_dataset("digits", limit=300, seed=0)
    sel = select(data, method="el2n", ratio=0.3, seed=0, seeds=2, proxy_config=TINY_PROXY, progress=False)
    runs = [run_proxy(data, TINY_PROXY, seed=proxy_seed(0, i), progress=False)[0] for i in range(2)]
    assert runs[1].meta["seed"] == proxy_seed(0, 1) != 0
    expected = (scores.el2n(runs[0].logits_at(1), data.train.label_array) + scores.el2n(runs[1].logits_at(1), data.train.label_array)) / 2
    np.testing.assert_allclose(sel.raw_scores, expected)
    assert sel.manifest["proxy_runs"] == 2


def test_cached_extra_runs_are_charged_what_training_them_took(tmp_path):
    """A second method reading the same extra proxy runs from the cache costs what the first paid."""
    from rlselector import load_dataset
    from rlselector.bench.cost import selection_cost
    from rlselector.selection.proxy import clear_memory_cache

    data = load_dataset("digits", limit=300, seed=0)
    clear_memory_cache()
    first = select(data, method="el2n", ratio=0.3, seed=5, seeds=3, proxy_config=TINY_PROXY, cache_dir=tmp_path, progress=False)
    second = select(data, method="el2n", ratio=0.6, seed=5, seeds=3, proxy_config=TINY_PROXY, cache_dir=tmp_path, progress=False)
    paid, reused = first.manifest["timings"], second.manifest["timings"]
    assert paid["proxy_s"] > 0 and "reused_s" not in paid
    assert reused["proxy_cached"] and reused["reused_s"] > 0
    # the two extra runs: what the first selection paid for them beyond its own run 0
    run0 = paid["proxy_s"] - reused["reused_s"]
    assert 0 < run0 < paid["proxy_s"]
    assert selection_cost(reused, shared_proxy_s=run0)["cost_s"] >= paid["proxy_s"]


def test_default_averages_the_papers_ten_runs():
    from rlselector import load_dataset
    from rlselector.methods.el2n import EL2N
    from rlselector.selection.method import SelectionContext

    method = EL2N(EL2N.make_params())
    assert method.params.seeds is None
    assert method.runs(SelectionContext(dataset=load_dataset("digits", limit=300, seed=0), ratio=0.3, seed=0)) == 10
    data, record = _record()
    sel = select(data, method="el2n", ratio=0.5, seed=0, dynamics=record, progress=False)
    assert sel.manifest["proxy_runs"] == 1  # the user's dynamics are one run
