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


def captured_run(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cfg, raw, show_progress=True, resume=None):
        seen["cfg"], seen["raw"] = cfg, raw
        return tmp_path

    monkeypatch.setattr("lm_eval_it.runner.run", fake_run)
    return seen


def three_models(tmp_path, tiny_model_dir, **eval_):
    cfg = tmp_path / "cfg.yaml"
    models = [{"name": n, "path": str(tiny_model_dir)} for n in ("fp32", "int8", "fp16")]
    cfg.write_text(yaml.safe_dump({"models": models, "datasets": [{"builtin": "pydoc_topics", "limit": 2}],
                                   "eval": eval_, "output": {"baseline": "int8"}}))
    return str(cfg)


def test_sweep_without_temperatures_keeps_the_configs(monkeypatch, tmp_path, tiny_model_dir):
    seen = captured_run(monkeypatch, tmp_path)
    assert main(["sweep", three_models(tmp_path, tiny_model_dir, temperatures=[0.5, 1.5])]) == 0
    assert seen["cfg"].eval.temperatures == [0.5, 1.0, 1.5]
    assert main(["sweep", three_models(tmp_path, tiny_model_dir)]) == 0
    temps = seen["cfg"].eval.temperatures
    assert len(temps) == 19 and temps[0] == pytest.approx(0.2) and temps[-1] == pytest.approx(2.0)
    assert main(["sweep", three_models(tmp_path, tiny_model_dir, temperatures=[0.5]), "--temperatures", "2,3"]) == 0
    assert seen["cfg"].eval.temperatures == [1.0, 2.0, 3.0]


def test_kl_keeps_only_the_named_pair_after_overrides(monkeypatch, tmp_path, tiny_model_dir):
    seen = captured_run(monkeypatch, tmp_path)
    cfg = three_models(tmp_path, tiny_model_dir)
    assert main(["kl", cfg, f"models.1={{name: bf16, path: {tiny_model_dir}}}", "--reference", "fp32",
                 "--candidate", "bf16"]) == 0
    models = seen["cfg"].models
    assert [(m.name, m.compare_to) for m in models] == [("fp32", None), ("bf16", "fp32")]
    assert seen["cfg"].output.baseline is None  # int8 is not run, so it cannot be the baseline


@pytest.mark.parametrize("flags,message", [
    (["--reference", "fp32", "--candidate", "fp61"],
     "--candidate: got 'fp61', expected a model name of the config ['fp32', 'int8', 'fp16'] (did you mean 'fp16'?)"),
    (["--reference", "fp23", "--candidate", "int8"], "--reference: got 'fp23'"),
    (["--reference", "fp32", "--candidate", "fp32"], "--reference and --candidate are both 'fp32'"),
])
def test_kl_names_the_available_models(monkeypatch, tmp_path, tiny_model_dir, capsys, flags, message):
    captured_run(monkeypatch, tmp_path)
    assert main(["kl", three_models(tmp_path, tiny_model_dir), *flags]) == 2
    assert message in capsys.readouterr().err


def test_relative_paths_follow_the_config_file_not_the_cwd(monkeypatch, tmp_path, tiny_model_dir):
    seen = captured_run(monkeypatch, tmp_path)
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "data" / "d.jsonl").write_text('{"text": "hello"}\n')
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "o.txt").write_text("other")
    (tmp_path / "conf" / "m").symlink_to(tiny_model_dir)
    cfg = tmp_path / "conf" / "c.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"path": "./m"}, {"path": "HuggingFaceTB/SmolLM2-135M"}],
                                   "datasets": [{"path": "data/d.jsonl"}], "output": {"dir": "out"}}))
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert main(["run", "../conf/c.yaml", "datasets.0.name=x"]) == 0
    c = seen["cfg"]
    assert c.datasets[0].path == str(tmp_path / "conf" / "data" / "d.jsonl")
    assert [m.path for m in c.models] == [str(tmp_path / "conf" / "m"), "HuggingFaceTB/SmolLM2-135M"]
    assert c.output.dir == "out" and c.output.run_name == "c"
    assert main(["run", "../conf/c.yaml", "datasets.0.path=o.txt"]) == 0  # override: relative to the cwd
    assert seen["cfg"].datasets[0].path == "o.txt"


def test_config_from_stdin_resolves_against_the_cwd(monkeypatch, tmp_path):
    import io

    seen = captured_run(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("models: [{path: org/m}]\ndatasets: [{path: d.txt}]\n"))
    assert main(["run", "-"]) == 0
    assert seen["cfg"].datasets[0].path == "d.txt" and seen["cfg"].output.run_name == "stdin"


def test_run_without_yaml_prints_only_json_to_stdout(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "notes.jsonl"
    data.write_text("".join(json.dumps({"text": f"Note {i}: the fox jumps over the dog {i} times."}) + "\n"
                            for i in range(5)))
    argv = ["run", "--model", str(tiny_model_dir), "--data", str(data), "--limit", "3", "--window", "16",
            "--stride", "8", "--out", str(tmp_path / "res"), "--name", "quick", "--json", "eval.batch_size=2",
            "eval.device=cpu"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # nothing else on stdout
    (folder,) = (tmp_path / "res" / "quick").iterdir()
    assert doc == json.loads((folder / "results.json").read_text())
    row = doc["results"][0]
    assert row["metrics"]["docs"] == 3 and row["eval"]["window"] == 16 and row["eval"]["stride"] == 8
    assert doc["config"]["eval"]["batch_size"] == 2 and doc["run_name"] == "quick"
    assert "bits/byte" in captured.err and f"results: {folder}" in captured.err


def test_version_and_usage(capsys):
    from lm_eval_it import __version__

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"lm-eval-it {__version__}\n"
    assert main(["run"]) == 2
    assert "run needs a config or --model and --data" in capsys.readouterr().err
    assert main(["run", "--model", "org/m"]) == 2
    assert "run --model needs --data" in capsys.readouterr().err


def test_gguf_model_flag_splits_folder_and_file(monkeypatch, tmp_path):
    seen = captured_run(monkeypatch, tmp_path)
    assert main(["run", "--model", "models/x/M.Q4.gguf", "--data", "pydoc_topics", "--temperatures", "0.5"]) == 0
    m = seen["cfg"].models[0]
    assert (m.path, m.gguf_file, m.name, seen["cfg"].output.run_name) == ("models/x", "M.Q4.gguf", "M.Q4", "M.Q4")
    assert seen["cfg"].datasets[0].builtin == "pydoc_topics" and seen["cfg"].eval.temperatures == [0.5, 1.0]


def test_resume_line_names_the_program_as_started_when_path_does_not_find_it(monkeypatch, tmp_path):
    """`make demo` runs .venv/bin/lm-eval-it without activating the venv: a bare `lm-eval-it` would not be found."""
    from lm_eval_it.cli import resume_command

    prog = tmp_path / ".venv" / "bin" / "lm-eval-it"
    prog.parent.mkdir(parents=True)
    prog.write_text("#!/bin/sh\n")
    prog.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(prog), "run", "c.yaml"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert resume_command(["run", "c.yaml"], "r/f") == shlex.join([str(prog), "run", "c.yaml", "--resume", "r/f"])
    monkeypatch.setenv("PATH", str(prog.parent))  # an activated venv: the short name resumes the same program
    assert resume_command(["run", "c.yaml"], "r/f").startswith("lm-eval-it run")
