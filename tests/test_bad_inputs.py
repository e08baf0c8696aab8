"""Bad inputs, one row each: the command is refused before heavy work with exit code 2 and a message
that names the file, field or option (the fragment), and leaves nothing behind it should not.

To add a case, add a row to ``CASES``: an id, a function from the test's scratch directory (with a
valid selection of digits in ``sel``) to the command-line arguments, and a fragment the error must
contain. Cases that need a file are built by ``corrupt``/``write`` helpers in the row itself.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from typer.testing import CliRunner

from rlselector import load_dataset, select
from rlselector.cli import app
from rlselector.selection.format import ARRAYS, MANIFEST

runner = CliRunner()

Args = Callable[[Path], list[str]]


@pytest.fixture(scope="module")
def valid_selection(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("valid") / "sel"
    select(load_dataset("digits"), "random", 0.5, 0, out=out, progress=False)
    return out


def copy_of(tmp: Path) -> Path:
    """A fresh copy of the valid selection in the case's scratch directory."""
    target = tmp / "bad-sel"
    shutil.copytree(tmp / "sel", target)
    return target


def with_arrays(**changes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        sel = copy_of(tmp)
        with np.load(sel / ARRAYS) as stored:
            arrays = {k: stored[k] for k in stored.files}
        for key, change in changes.items():
            arrays[key] = change(arrays[key])
        np.savez(sel / ARRAYS, **arrays)
        return sel
    return make


def with_manifest(change: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        sel = copy_of(tmp)
        manifest = json.loads((sel / MANIFEST).read_text())
        change(manifest)
        (sel / MANIFEST).write_text(json.dumps(manifest))
        return sel
    return make


def with_file(name: str, content: Callable[[Path], bytes]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        sel = copy_of(tmp)
        (sel / name).write_bytes(content(sel / name))
        return sel
    return make


def train_on(make_selection: Callable[[Path], Path]) -> Args:
    """``rlselector train`` on a (bad) selection: the selection is read before any training."""
    return lambda tmp: ["train", "--data", "digits", "--width", "4", "--epochs", "1", "--selection", str(make_selection(tmp)),
                        "--out", str(tmp / "run"), "--quiet"]


def select_args(*extra: str) -> Args:
    return lambda tmp: ["select", "--data", "digits", "--method", "random", "--out", str(tmp / "out"), "--quiet", *extra]


def npy_features(tmp: Path) -> str:
    np.save(tmp / "f.npy", np.zeros((1437, 4), dtype=np.float32))
    return str(tmp / "f.npy")


def a_file(tmp: Path) -> Path:
    (tmp / "plain-file").write_text("not a directory")
    return tmp / "plain-file"


CASES: list[tuple[str, Args, str]] = [
    # --- the ratio and method options
    ("ratio above one", select_args("--ratio", "1.5"), "must lie in (0, 1]"),
    ("ratio zero", select_args("--ratio", "0"), "must lie in (0, 1]"),
    ("ratio nan", select_args("--ratio", "nan"), "must lie in (0, 1]"),
    ("unknown method", lambda tmp: ["select", "--data", "digits", "--method", "nope", "--out", str(tmp / "out")], "unknown selection method 'nope'"),
    ("param without =", select_args("-p", "nonsense"), "KEY=VALUE"),
    ("features a method ignores", lambda tmp: [*select_args()(tmp), "--features", npy_features(tmp)], "does not read features"),
    ("resume with overwrite", select_args("--resume", "--overwrite"), "not both"),
    # --- an unusable --out, found before any work
    ("out is a file", lambda tmp: ["select", "--data", "digits", "--method", "random", "--out", str(a_file(tmp)), "--quiet"], "is a file"),
    ("out under a file", lambda tmp: ["select", "--data", "digits", "--method", "random", "--out", str(a_file(tmp) / "x"), "--quiet"], "is a file"),
    ("out under /proc", lambda tmp: ["train", "--data", "digits", "--out", "/proc/rlselector-x", "--quiet"], "not writable"),
    # --- selection files (each error names the file)
    ("duplicate indices", train_on(with_arrays(indices=lambda i: np.sort(np.concatenate([i[:-1], i[:1]])))), "strictly increasing"),
    ("float indices", train_on(with_arrays(indices=lambda i: i.astype(np.float64) + 0.5)), "integer"),
    ("index out of range", train_on(with_arrays(indices=lambda i: np.concatenate([i[:-1], [10**6]]))), "must lie in [0, 1437)"),
    ("negative index", train_on(with_arrays(indices=lambda i: np.concatenate([[-1], i[1:]]))), "must lie in [0, 1437)"),
    ("2-D indices", train_on(with_arrays(indices=lambda i: i.reshape(1, -1))), "1-D integer"),
    ("NaN scores", train_on(with_arrays(scores=lambda s: np.where(np.arange(len(s)) == 3, np.nan, s))), "NaN/inf"),
    ("scores of the wrong length", train_on(with_arrays(scores=lambda s: s[:-1])), "do not belong together"),
    ("truncated npz", train_on(with_file(ARRAYS, lambda p: p.read_bytes()[:200])), ARRAYS),
    ("npy in place of the npz", train_on(with_file(ARRAYS, lambda p: (np.save(p.with_suffix(".tmp.npy"), np.arange(3)), p.with_suffix(".tmp.npy").read_bytes())[1])), "not a .npz archive"),
    ("manifest not JSON", train_on(with_file(MANIFEST, lambda p: b"{not json")), "not valid JSON"),
    ("manifest a list", train_on(with_file(MANIFEST, lambda p: b"[1, 2]")), "JSON object"),
    ("dataset a string", train_on(with_manifest(lambda m: m.update(dataset="digits"))), "field 'dataset' must be object"),
    ("dataset without fingerprint", train_on(with_manifest(lambda m: m["dataset"].pop("fingerprint"))), "'dataset.fingerprint' is missing"),
    ("ratio_achieved not a number", train_on(with_manifest(lambda m: m.update(ratio_achieved="half"))), "'ratio_achieved' must be integer or number"),
    ("n a boolean", train_on(with_manifest(lambda m: m.update(n=True))), "field 'n' must be integer"),
    ("method missing", train_on(with_manifest(lambda m: m.pop("method"))), "field 'method' is missing"),
    ("arrays missing", train_on(lambda tmp: (lambda s: ((s / ARRAYS).unlink(), s)[1])(copy_of(tmp))), "selection.npz: missing"),
]


@pytest.mark.parametrize("args, fragment", [pytest.param(args, fragment, id=name) for name, args, fragment in CASES])
def test_bad_input_is_refused_with_a_clear_message(args, fragment, valid_selection, tmp_path):
    shutil.copytree(valid_selection, tmp_path / "sel")
    result = runner.invoke(app, args(tmp_path))
    message = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    assert fragment in message or fragment in result.output.replace("\n", ""), message
    assert not (tmp_path / "run").exists() and not (tmp_path / "out" / MANIFEST).exists()


def test_the_table_is_not_vacuous(valid_selection, tmp_path):
    """The valid selection itself trains: the rows fail because of what each changes."""
    shutil.copytree(valid_selection, tmp_path / "sel")
    result = runner.invoke(app, ["train", "--data", "digits", "--width", "4", "--epochs", "1", "--selection", str(tmp_path / "sel"),
                                 "--out", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
