"""End to end through the CLI on a tiny model: results on disk, and one-line errors."""

import logging
import math
import subprocess
import sys
import warnings

import pytest
import yaml
from conftest import run_path, write_config

from lm_eval_it.cli import _setup_logging, main

TEXTS = ["The quick brown fox jumps over the lazy dog.\r\n", "Numbers: 3.14159 and 2.71828, héllo wörld!",
         "def f(x):\n    return x * 2\n" * 5, ""]


def toy_config(tmp_path, tiny_model_dir, **eval_):
    return write_config(tmp_path, {"tiny": tiny_model_dir}, TEXTS, name="t", dataset="toy",
                        eval={"window": 16, "stride": 8, "batch_size": 4, "device": "cpu", **eval_})


def test_run_writes_results_with_provenance(tmp_path, tiny_model_dir, tiny, capsys):
    run = run_path(toy_config(tmp_path, tiny_model_dir), "eval.stride=4")
    folder, res = run.folder, run.results
    assert res["complete"] is True and res["config"]["eval"]["stride"] == 4
    (row,) = res["results"]
    _, tok = tiny
    kept = [t for t in TEXTS if t]
    m = row["metrics"]
    assert m["docs"] == 3 and res["datasets"][0]["skipped_empty"] == 1
    assert m["tokens"] == sum(len(tok(t, add_special_tokens=False).input_ids) for t in kept)
    assert m["bytes"] == sum(len(t.encode()) for t in kept)
    assert m["nll"] == pytest.approx(sum(d["nll"] for d in row["per_document"]), rel=1e-12)
    assert m["bits_per_byte"] == pytest.approx(m["nll"] / math.log(2) / m["bytes"], rel=1e-12)
    assert row["eval"]["prefix"] == "bos:<s>" and row["eval"]["min_context"] == 1
    for key in ("versions", "git_commit", "device", "python"):
        assert key in res["provenance"]
    assert row["model_fingerprint"].startswith("folder-sha256:") and len(row["dataset_fingerprint"]) == 64
    assert "| tiny | toy | 3 |" in (folder / "summary.md").read_text()
    out = capsys.readouterr().out
    assert "tiny" in out and "bits/byte" in out and str(folder) in out


def test_window_is_clamped_to_model_maximum(tmp_path, tiny_model_dir, caplog):
    res = run_path(toy_config(tmp_path, tiny_model_dir, window=100000, stride=100000)).results
    assert res["results"][0]["eval"]["window"] == 512
    assert "clamped to 512" in caplog.text


@pytest.mark.parametrize("edit,expected", [
    (lambda c: c["eval"].update(strid=3), "eval.strid: unknown key (did you mean 'stride'?)"),
    (lambda c: c["models"][0].update(path="/nonexistent/model"), "model path '/nonexistent/model' does not exist"),
    (lambda c: c["datasets"][0].update(path="/nonexistent/d.jsonl"), "file '/nonexistent/d.jsonl' does not exist"),
    (lambda c: c["datasets"][0].update(text_field="body"), "unknown text_field 'body'"),
    (lambda c: c["eval"].update(window=4, stride=8), "stride 8 is larger than window 4"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny_model_dir, capsys, edit, expected):
    path = toy_config(tmp_path, tiny_model_dir)
    cfg = yaml.safe_load(path.read_text())
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "results" / "t").exists() or not any((tmp_path / "results" / "t").iterdir())


def test_model_folder_without_config(tmp_path, tiny_model_dir, capsys):
    path = toy_config(tmp_path, tiny_model_dir)
    (tmp_path / "empty_model").mkdir()
    assert main(["run", str(path), "--quiet", f"models.0.path={tmp_path / 'empty_model'}"]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_subprocess_error_has_no_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  - path: x\n    dtype: fp8\ndatasets:\n  - builtin: pydoc_topics\n")
    proc = subprocess.run([sys.executable, "-m", "lm_eval_it", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == f"error: {bad}: models.0.dtype: got 'fp8', expected 'auto', 'float32', 'bfloat16' or 'float16'\n"
    assert "Traceback" not in proc.stderr


def test_unreachable_hub_model_and_dataset_are_one_line(tmp_path, tiny_model_dir, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = toy_config(tmp_path, tiny_model_dir)
    assert main(["run", str(path), "--quiet", "models.0.path=no-such-org/no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'tiny' (no-such-org/no-such-model) could not be loaded") and err.count("\n") == 1
    cfg = yaml.safe_load(path.read_text())
    cfg["datasets"] = [{"hub": "no-such-org/no-such-dataset", "config": "x", "split": "test"}]
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not load hub dataset 'no-such-org/no-such-dataset'" in err and err.count("\n") == 1


def test_tokenizer_that_adds_bos_is_never_scored_with_two(tmp_path, tiny_model_dir):
    """A tokenizer whose post-processor adds BOS (like Gemma's): detected, and only one BOS is used."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    from lm_eval_it.backends.tokenizer import encode, tokenizer_info

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer_info(tok)["adds_bos"] is False
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    assert tok("hello").input_ids[0] == tok.bos_token_id
    info = tokenizer_info(tok)
    assert info["adds_bos"] is True and info["bos"] == "<s>"
    assert tok.bos_token_id not in encode(tok, ["hello"])[0]  # encoded without special tokens


def test_identical_warnings_print_once_and_library_warnings_are_hidden(capsys):
    root = logging.getLogger()
    old_handlers, old_filters = root.handlers[:], warnings.filters[:]
    root.handlers = [logging.StreamHandler()]
    try:
        _setup_logging()
        log = logging.getLogger("lm_eval_it.test")
        for _ in range(3):
            log.warning("window clamped to %d", 512)
        log.warning("window clamped to %d", 256)
        with warnings.catch_warnings(record=True) as caught:
            warnings.filters[:] = [f for f in warnings.filters if f[0] == "ignore"]  # keep ours, drop pytest's
            warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module="transformers.utils")
            warnings.warn_explicit("ours", UserWarning, "y.py", 1, module="lm_eval_it.run.runner")
        assert [str(w.message) for w in caught] == ["ours"]
    finally:
        root.handlers, warnings.filters[:] = old_handlers, old_filters
    err = capsys.readouterr().err
    assert err.count("window clamped to 512") == 1 and err.count("window clamped to 256") == 1


def test_dtype_alias_through_the_cli_override(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("lm_eval_it.run.runner.run", lambda cfg, raw, **kw: seen.setdefault("cfg", cfg))
    assert main(["run", "--model", "org/m", "--data", "pydoc_topics", "models.0.dtype=bf16"]) == 0
    assert seen["cfg"].models[0].dtype == "bfloat16"


def test_compare_refuses_runs_that_share_no_dataset_and_writes_nothing(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = run_path(write_config(tmp_path / "a", {"tiny": tiny_model_dir}, ["one text here", "and another"], name="a",
                              dataset="first"))
    b = run_path(write_config(tmp_path / "b", {"tiny": tiny_model_dir}, ["other words", "still more"], name="b",
                              dataset="second"))
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", str(a.folder), str(b.folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing to compare: no dataset is scored by more than one model") and err.count("\n") == 1
    assert not out.exists()
