"""The CLI from a new user's side: the resume line, sweep/kl shorthands, config-relative paths, --json."""

import json
import shlex
import subprocess
import sys

import pytest
import yaml

from lm_eval_it.cli import main
from lm_eval_it.rundir import RunInterrupted

ECHO_ARGS = f"lm-eval-it() {{ {shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"; }}"


def interrupted_run(monkeypatch, tmp_path):
    """Make the runner stop at once as Ctrl-C would, with 3 documents checkpointed."""
    seen = {}

    def fake_run(cfg, raw, show_progress=True, resume=None):
        seen["cfg"], seen["raw"] = cfg, raw
        raise RunInterrupted(tmp_path / "results" / "my run" / "20260101T000000Z", 3)

    monkeypatch.setattr("lm_eval_it.runner.run", fake_run)
    return seen


def resume_line(stderr: str) -> str:
    return stderr.split("resume with: ", 1)[1].strip()


@pytest.mark.parametrize("command", [
    ["sweep", "CFG", "eval.stride=4", "output.run_name=my run", "--temperatures", "0.5,1.5", "--quiet"],
    ["kl", "CFG", "--reference", "a", "--candidate", "b", "eval.prefix=it's"],
    ["run", "CFG", "--resume", "old/folder", "eval.window=16"],
])
def test_resume_line_reparses_to_the_same_argv(monkeypatch, tmp_path, capsys, tiny_model_dir, command):
    cfg = tmp_path / "c f g.yaml"
    models = [{"name": n, "path": str(tiny_model_dir)} for n in ("a", "b")]
    cfg.write_text(yaml.safe_dump({"models": models, "datasets": [{"builtin": "pydoc_topics", "limit": 2}],
                                   "output": {"dir": str(tmp_path / "results")}}))
    argv = [str(cfg) if a == "CFG" else a for a in command]
    interrupted_run(monkeypatch, tmp_path)
    assert main(argv) == 130
    line = resume_line(capsys.readouterr().err)
    out = subprocess.run(["bash", "-c", f"{ECHO_ARGS}\n{line}"], capture_output=True, text=True, check=True).stdout
    expected = [a for i, a in enumerate(argv) if a != "--resume" and (i == 0 or argv[i - 1] != "--resume")]
    assert json.loads(out) == expected + ["--resume", str(tmp_path / "results" / "my run" / "20260101T000000Z")]
