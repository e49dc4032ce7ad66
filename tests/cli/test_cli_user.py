"""The CLI from a new user's side: the resume line, sweep/kl shorthands, config-relative paths, --json."""

import json
import shlex
import subprocess
import sys

import pytest
import yaml

from lm_eval_it.cli import main
from lm_eval_it.run.rundir import RunInterrupted

ECHO_ARGS = f"lm-eval-it() {{ {shlex.quote(sys.executable)} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"; }}"


def interrupted_run(monkeypatch, tmp_path):
    """Make the runner stop at once as Ctrl-C would, with 3 documents checkpointed."""
    seen = {}

    def fake_run(cfg, raw, show_progress=True, resume=None, details=False):
        seen["cfg"], seen["raw"] = cfg, raw
        raise RunInterrupted(tmp_path / "results" / "my run" / "20260101T000000Z", 3)

    monkeypatch.setattr("lm_eval_it.run.runner.run", fake_run)
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

    def fake_run(cfg, raw, show_progress=True, resume=None, details=False):
        seen["cfg"], seen["raw"] = cfg, raw
        return tmp_path

    monkeypatch.setattr("lm_eval_it.run.runner.run", fake_run)
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


def test_a_typo_of_a_builtin_name_is_said_before_any_hub_lookup(monkeypatch, tmp_path, capsys):
    seen = captured_run(monkeypatch, tmp_path)
    monkeypatch.setattr("lm_eval_it.data.hub.check_reachable", lambda *a: pytest.fail("the hub was asked"))
    assert main(["run", "--model", "org/m", "--data", "pydoc_topic"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --data: 'pydoc_topic' is not a file or a builtin name (did you mean "
                          "'pydoc_topics'?)") and err.count("\n") == 1
    assert main(["run", "--model", "org/m", "--data", "wikitext"]) == 0  # a hub id behind a name is no typo
    assert seen["cfg"].datasets[0].hub == "wikitext"
    assert main(["run", "--model", "org/m", "--data", "someone/pydoc_topic"]) == 0
    assert seen["cfg"].datasets[0].hub == "someone/pydoc_topic"


def test_a_builtin_typo_in_a_config_suggests_the_name(tmp_path, capsys):
    from lm_eval_it.config import DatasetConfig
    from lm_eval_it.data.documents import load_documents
    from lm_eval_it.errors import UserError

    with pytest.raises(UserError, match=r"'pydoc_topic' reads like a typo of a builtin name; did you mean "
                                        r"`builtin: pydoc_topics`\?"):
        load_documents(DatasetConfig(hub="pydoc_topic"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("models: [{path: org/m}]\ndatasets: [{builtin: pydoc_topic}]\n")
    assert main(["run", str(cfg)]) == 2
    assert "datasets.0.builtin: got 'pydoc_topic'" in capsys.readouterr().err.split("(did you mean 'pydoc_topics'?)")[0]


def test_an_override_error_names_the_override_not_the_config_file(tmp_path, capsys):
    cfg = tmp_path / "base.yaml"
    cfg.write_text("models: [{path: org/m}]\ndatasets: [{builtin: pydoc_topics}]\n")
    assert main(["run", str(cfg), "eval.windw=5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: override 'eval.windw=5': eval.windw: unknown key (did you mean 'window'?)")
    assert "base.yaml" not in err and err.count("\n") == 1
    assert main(["run", str(cfg), "models.0.dtype=fp8"]) == 2
    assert capsys.readouterr().err.startswith("error: override 'models.0.dtype=fp8': models.0.dtype: got 'fp8'")
    assert main(["run", str(cfg), "--window", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: --window: eval.window: got 1")
    cfg.write_text("models: [{path: org/m}]\ndatasets: [{builtin: pydoc_topics}]\neval: {windw: 5}\n")
    assert main(["run", str(cfg), "eval.stride=4"]) == 2  # the file's own typo is still the file's
    assert capsys.readouterr().err.startswith(f"error: {cfg}: eval.windw: unknown key")


def test_device_dtype_batch_size_and_backend_flags_set_every_model(monkeypatch, tmp_path, tiny_model_dir, capsys):
    seen = captured_run(monkeypatch, tmp_path)
    assert main(["run", three_models(tmp_path, tiny_model_dir), "--device", "cpu", "--dtype", "bf16",
                 "--batch-size", "3", "--backend", "hf"]) == 0
    c = seen["cfg"]
    assert (c.eval.device, c.eval.batch_size) == ("cpu", 3)
    assert [(m.dtype, m.backend) for m in c.models] == [("bfloat16", "hf")] * 3
    assert main(["run", "--model", "org/m", "--data", "pydoc_topics", "--batch-size", "auto"]) == 0
    assert seen["cfg"].eval.batch_size == "auto" and seen["cfg"].models[0].backend == "hf"
    assert main(["run", "--model", "org/m", "--data", "pydoc_topics", "--backend", "vllm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --backend: models.0.backend: got 'vllm', expected 'hf', 'llama.cpp' or 'openai'") and err.count("\n") == 1


def test_sweep_and_context_take_model_and_data(monkeypatch, tmp_path):
    seen = captured_run(monkeypatch, tmp_path)
    assert main(["sweep", "--model", "org/m", "--data", "pydoc_topics", "--limit", "3"]) == 0
    c = seen["cfg"]
    assert c.models[0].path == "org/m" and c.datasets[0].limit == 3 and len(c.eval.temperatures) == 19
    assert main(["context", "--model", "org/m", "--data", "pydoc_topics", "--window", "64", "--device", "cpu"]) == 0
    c = seen["cfg"]
    assert (c.eval.window, c.eval.stride, c.output.run_name, c.eval.device) == (64, 64, "m-context", "cpu")


def test_kl_takes_model_and_data_with_variants_or_two_models(monkeypatch, tmp_path, capsys):
    seen = captured_run(monkeypatch, tmp_path)
    assert main(["kl", "--model", "org/m", "--data", "pydoc_topics", "--reference", "fp32", "--candidate", "int8"]) == 0
    assert [(m.name, m.path, m.dtype, m.quantize, m.compare_to) for m in seen["cfg"].models] == [
        ("fp32", "org/m", "float32", "none", None), ("int8", "org/m", "float32", "int8", "fp32")]
    assert main(["kl", "--data", "pydoc_topics", "--reference", "org/big", "--candidate", "org/small"]) == 0
    assert [(m.name, m.compare_to) for m in seen["cfg"].models] == [("big", None), ("small", "big")]
    assert main(["kl", "--data", "pydoc_topics", "--reference", "fp32", "--candidate", "bf16"]) == 2
    assert "--reference fp32: a variant of --model; give --model too" in capsys.readouterr().err
