import json

from typer.testing import CliRunner

from rlselector.cli import app

runner = CliRunner()


def test_datasets_lists_sources():
    result = runner.invoke(app, ["datasets"])
    assert result.exit_code == 0
    for name in ("fashion-mnist", "mnist", "digits", "cifar10", "folder", "npz"):
        assert name in result.output


def test_methods_lists_random_with_params():
    result = runner.invoke(app, ["methods", "--params"])
    assert result.exit_code == 0 and "random" in result.output


def test_every_command_has_help():
    for command in ("datasets", "methods", "select", "train", "quickstart", "bench", "report"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert "--help" in result.output


def test_select_then_train_on_selection(tmp_path):
    sel_dir, run_dir = tmp_path / "sel", tmp_path / "run"
    result = runner.invoke(app, ["select", "--data", "digits", "--method", "random", "--ratio", "0.5", "--seed", "1", "--out", str(sel_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "kept 718 of 1,437" in result.output
    result = runner.invoke(app, ["train", "--data", "digits", "--width", "4", "--epochs", "1", "--selection", str(sel_dir), "--out", str(run_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "718 training samples" in result.output
    assert json.loads((run_dir / "result.json").read_text())["top1"] is not None
    result = runner.invoke(app, ["train", "--data", "digits", "--width", "4", "--epochs", "1", "--selection", str(sel_dir), "--recalibrate-bn",
                                 "--out", str(tmp_path / "recalibrated"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "recalibrated" / "result.json").read_text())["config"]["recalibrate_bn"] is True


def test_bad_input_is_one_clear_line(tmp_path):
    result = runner.invoke(app, ["select", "--data", "digits", "--method", "random", "--ratio", "1.5", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "must lie in (0, 1]" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["select", "--data", "digits", "--method", "random", "-p", "nonsense", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output


def test_quickstart_reuses_only_a_matching_selection(tmp_path):
    """A finished quickstart is reused as is; asked for another ratio in the same --out it is refused
    with the field and the fix, instead of silently reporting the old selection."""
    args = ["quickstart", "--data", "digits", "--method", "random", "--ratio", "0.5", "--recipe", "cpu-tiny", "--out", str(tmp_path), "--quiet"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "quickstart.json").read_text())
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and json.loads((tmp_path / "quickstart.json").read_text()) == summary
    other = runner.invoke(app, [*args[:6], "0.3", *args[7:]])
    assert other.exit_code != 0
    words = " ".join(other.output.split())  # the console wraps long lines
    assert "selection-random/selection.json" in other.output.replace("\n", "")
    assert "differs in ratio" in words and "another --out" in words
