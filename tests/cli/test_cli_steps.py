"""The CLI's steps: parsing (overrides, unknown flags), compare's refusals, the Ctrl-C message."""

import pytest

from lm_eval_it.cli import _interrupted_text, _parse, main
from lm_eval_it.run.rundir import RunInterrupted


def test_parse_moves_an_override_out_of_the_config_place():
    args, unknown = _parse(["run", "--model", "m", "--data", "d.txt", "eval.stride=8", "eval.window=16"])
    assert unknown is None and args.config is None
    assert args.overrides == ["eval.stride=8", "eval.window=16"]


def test_parse_keeps_a_config_and_its_overrides():
    args, unknown = _parse(["sweep", "c.yaml", "eval.stride=8", "--temperatures", "1,2"])
    assert unknown is None and args.config == "c.yaml" and args.overrides == ["eval.stride=8"]
    assert args.temperatures == "1,2"


def test_parse_returns_the_first_unknown_flag():
    _, unknown = _parse(["run", "c.yaml", "--nope", "--also-nope"])
    assert unknown == "--nope"


def test_unknown_flag_is_one_error_line_and_exit_2(capsys):
    assert main(["run", "c.yaml", "--nope"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: unrecognized argument '--nope'; overrides are key=value (e.g. eval.stride=256), "
                   "see lm-eval-it run --help\n")


def test_compare_refuses_overrides(tmp_path, capsys):
    """A key=value after compare's flags is left over by argparse: refused before any run is looked up."""
    assert main(["compare", "runA", "--dir", str(tmp_path / "none"), "eval.stride=8"]) == 2
    assert capsys.readouterr().err == "error: compare takes run folders, not overrides: eval.stride=8\n"


def test_interrupted_text_with_a_checkpoint_says_how_to_resume(monkeypatch):
    monkeypatch.setattr("sys.argv", ["lm-eval-it"])
    e = RunInterrupted("results/r/20260101T000000Z", 3)
    assert _interrupted_text(e, ["run", "c.yaml"]) == (
        "\ninterrupted: 3 documents are checkpointed in results/r/20260101T000000Z; "
        "resume with: lm-eval-it run c.yaml --resume results/r/20260101T000000Z")


def test_interrupted_text_without_a_run_or_a_checkpoint():
    assert _interrupted_text(KeyboardInterrupt(), []) == "\ninterrupted before the run began; nothing new was written"
    assert _interrupted_text(RunInterrupted(None, 0), []) == "\ninterrupted before any token was scored; nothing was written"


@pytest.mark.parametrize("command", ["run", "sweep", "kl", "context", "compare"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0 and f"usage: lm-eval-it {command}" in capsys.readouterr().out

