"""Selection under torchrun (2 processes, gloo on the CPU): RL-Selector and a proxy method give a valid
selection, every rank selects the same, only rank 0 writes, and the same seed gives the same selection
again. The cover and nearest neighbours computed with classes split across the ranks equal the
single-process ones; agents that drift apart are realigned on rank 0's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rlselector.selection.format import load_selection

SCRIPT = textwrap.dedent(
    """
    import atexit, json, os, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from rlselector import load_dataset, select
    from rlselector.cover import cover, nearest_neighbours
    from rlselector.selection.proxy import ProxyConfig
    from rlselector.train import TrainConfig
    from rlselector.train.distributed import DistributedContext

    out, rank = sys.argv[1], int(os.environ["RANK"])
    # registered before the library joins the group, so it runs after the library's exit handler (LIFO)
    atexit.register(lambda: open(os.path.join(out, f"left-rank{rank}.txt"), "w").write(str(torch.distributed.is_initialized())))
    data = load_dataset("digits", limit=400, seed=0)
    proxy = ProxyConfig(model="resnet18", width=4, recipe=TrainConfig(epochs=2, batch_size=32), record_epochs=(1, 2))
    runs = {
        "rl-selector": dict(recipe="cpu-tiny", epochs=3),
        "forgetting": dict(proxy_config=proxy),
    }
    report = {}
    for method, params in runs.items():
        for attempt in ("a", "b"):  # the same seed twice: the same selection
            sel = select(data, method, 0.5, 0, out=os.path.join(out, f"{method}-{attempt}"), progress=False, device="cpu", **params)
            np.save(os.path.join(out, f"{method}-{attempt}-rank{rank}.npy"), sel.scores)

    ranks = DistributedContext.current()
    generator = torch.Generator().manual_seed(0)
    features, labels = torch.randn(300, 6, generator=generator), torch.randint(0, 5, (300,), generator=generator)
    alone, split = cover(features, labels, 1.5), cover(features, labels, 1.5, ranks=ranks)
    near_alone, near_split = nearest_neighbours(features, labels, 4), nearest_neighbours(features, labels, 4, ranks=ranks)
    report["cover_equal"] = all(torch.equal(a, b) for a, b in zip(alone, split))
    report["neighbours_equal"] = all(torch.equal(a, b) for a, b in zip(near_alone, near_split))
    report["world_size"] = ranks.world_size

    from rlselector.agent import SelectorAgent
    agent = SelectorAgent(4, 0.5, seed=0)
    if rank == 1:  # a drifted copy: rank 0's must win
        with torch.no_grad():
            next(agent.actor.parameters()).add_(1.0)
        agent.multiplier = 3.0
    report["drift_found"] = agent.align_ranks(ranks)
    report["drift_left"] = agent.align_ranks(ranks)
    report["actor"] = next(agent.actor.parameters()).sum().item()
    report["multiplier"] = agent.multiplier
    with open(os.path.join(out, f"report-rank{rank}.json"), "w") as f:
        json.dump(report, f)
    """
)


def _torchrun(*args: str, port: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-select")
    script = root / "ddp_selection.py"  # not select.py: that name shadows the standard library's select
    script.write_text(SCRIPT)
    _torchrun(str(script), str(root), port=29531)
    return root


def test_every_rank_reports_the_whole_split_cover(two_ranks):
    for rank in (0, 1):
        report = json.loads((two_ranks / f"report-rank{rank}.json").read_text())
        assert {k: report[k] for k in ("cover_equal", "neighbours_equal", "world_size")} == {
            "cover_equal": True, "neighbours_equal": True, "world_size": 2}


def test_agents_that_drift_apart_take_rank_0s(two_ranks):
    reports = [json.loads((two_ranks / f"report-rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [(r["drift_found"], r["drift_left"]) for r in reports] == [(True, False), (True, False)]
    assert reports[0]["actor"] == reports[1]["actor"] and reports[1]["multiplier"] == 0.0


def test_every_rank_leaves_the_process_group_at_exit(two_ranks):
    # a gloo group alive at interpreter teardown can abort the rank (SIGABRT) after its work is done
    assert [(two_ranks / f"left-rank{rank}.txt").read_text() for rank in (0, 1)] == ["False", "False"]


@pytest.mark.parametrize("method", ["rl-selector", "forgetting"])
def test_two_ranks_select_once_and_the_same(two_ranks, method):
    selection = load_selection(two_ranks / f"{method}-a")
    n = selection.manifest["n"]
    assert n == 400
    assert len(np.unique(selection.indices)) == len(selection.indices)
    assert abs(selection.manifest["ratio_achieved"] - 0.5) <= 0.01
    # every rank computed the same scores, and a second run with the seed gives them again
    first = np.load(two_ranks / f"{method}-a-rank0.npy")
    np.testing.assert_array_equal(first, np.load(two_ranks / f"{method}-a-rank1.npy"))
    np.testing.assert_array_equal(first, np.load(two_ranks / f"{method}-b-rank0.npy"))
    np.testing.assert_array_equal(first, selection.scores)
    assert np.array_equal(load_selection(two_ranks / f"{method}-b").indices, selection.indices)


def test_the_cli_under_torchrun_writes_and_reports_once(tmp_path):
    out = tmp_path / "sel"
    done = _torchrun("-m", "rlselector.cli", "select", "--data", "digits", "--limit", "300", "--method", "rl-selector",
                     "--recipe", "cpu-tiny", "-p", "epochs=2", "--ratio", "0.3", "--device", "cpu", "--threads", "1",
                     "--quiet", "--out", str(out), port=29533)
    assert done.stdout.count("kept") == 1, done.stdout  # one summary line: rank 0's
    assert sorted(p.name for p in out.iterdir()) == ["diagnostics.jsonl", "diagnostics.png", "selection.json", "selection.npz", "work"]
    assert len((out / "diagnostics.jsonl").read_text().splitlines()) == 2  # one record per epoch, not one per rank
    assert len((out / "work" / "target" / "log.jsonl").read_text().splitlines()) == 2
    assert not list(out.rglob("*.tmp")) and not (out / ".lock").exists()
    assert abs(load_selection(out).manifest["n_kept"] - 90) <= 3  # inside the ±1 % band
