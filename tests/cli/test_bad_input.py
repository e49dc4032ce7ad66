"""The bad-input matrix: every case exits with code 2 and one line that names the problem and the fix,
and no results file is written. Followed by inputs that are odd but valid, which must score."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import byte_level_tokenizer, tiny_llama

from lm_eval_it.cli import main

GOOD_TEXTS = ["The quick brown fox jumps over the lazy dog.", "Second document, with numbers 1 2 3."]


def base_config(tmp_path: Path, model_dir: Path) -> dict:
    data = tmp_path / "docs.jsonl"
    if not data.exists():
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in GOOD_TEXTS))
    return {
        "models": [{"name": "tiny", "path": str(model_dir)}],
        "datasets": [{"name": "toy", "path": str(data)}],
        "eval": {"window": 16, "stride": 8, "batch_size": 2, "device": "cpu"},
        "output": {"dir": str(tmp_path / "results"), "run_name": "bad"},
    }


def write(tmp_path, cfg: dict, name="cfg.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(cfg))
    return p


def gguf_file(path: Path, arch: str) -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(1)
    w.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def model_variant(tmp_path, tiny_model_dir, kind: str) -> Path:
    """A broken or unusual model folder built from the tiny model."""
    folder = tmp_path / f"model-{kind}"
    folder.mkdir()
    tok = byte_level_tokenizer()
    if kind == "no-special-tokens":
        tok.bos_token = None
        tok.eos_token = None
        tiny_llama(len(tok)).save_pretrained(folder)
        tok.save_pretrained(folder)
    elif kind == "remote-code":
        (folder / "config.json").write_text(json.dumps({
            "model_type": "unicorn", "auto_map": {"AutoConfig": "configuration_unicorn.UnicornConfig",
                                                  "AutoModelForCausalLM": "modeling_unicorn.UnicornForCausalLM"}}))
    elif kind == "pickle-only":
        model = tiny_llama(len(tok))
        model.config.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
        tok.save_pretrained(folder)
    elif kind == "nan":
        model = tiny_llama(len(tok))
        with torch.no_grad():
            model.model.norm.weight.fill_(float("nan"))
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
    elif kind == "gguf-truncated":
        full = gguf_file(tmp_path / "full.gguf", "llama").read_bytes()
        (folder / "m.gguf").write_bytes(full[: len(full) // 3])
    elif kind == "gguf-unicorn":
        gguf_file(folder / "m.gguf", "unicorn")
    return folder


def set_(path: str, value):
    def edit(cfg, tmp_path, model_dir):
        node, keys = cfg, path.split(".")
        for k in keys[:-1]:
            node = node[int(k)] if k.isdigit() else node[k]
        node[int(keys[-1]) if keys[-1].isdigit() else keys[-1]] = value
    return edit


def use_model(kind: str, **extra):
    def edit(cfg, tmp_path, model_dir):
        folder = model_variant(tmp_path, model_dir, kind)
        cfg["models"][0]["path"] = str(folder)
        if kind.startswith("gguf"):
            cfg["models"][0]["gguf_file"] = "m.gguf"
        cfg["models"][0].update(extra)
    return edit


def data_file(name: str, content: bytes, **extra):
    def edit(cfg, tmp_path, model_dir):
        (tmp_path / name).write_bytes(content)
        cfg["datasets"][0].update(path=str(tmp_path / name), **extra)
    return edit


def out_under_a_file(cfg, tmp_path, model_dir):
    (tmp_path / "a-file").write_text("x")
    cfg["output"]["dir"] = str(tmp_path / "a-file" / "results")


CASES = {
    # config
    "yaml-syntax": (None, r"YAML syntax error at line 3"),
    "missing-config-file": ("missing", "does not exist"),
    "unknown-key": (set_("eval.strid", 4), "eval.strid: unknown key (did you mean 'stride'?)"),
    "wrong-type": (set_("eval.window", "big"), "eval.window: got 'big'"),
    "stride-gt-window": (set_("eval.stride", 32), "stride 32 is larger than window 16"),
    "window-lt-2": (set_("eval.window", 1), "eval.window: got 1, expected greater than or equal to 2"),
    "temperature-le-0": (set_("eval.temperatures", [1.0, -0.5]), "expected temperatures > 0, got [-0.5]"),
    "empty-models": (set_("models", []), "models: expected at least 1 item"),
    "empty-datasets": (set_("datasets", []), "datasets: expected at least 1 item"),
    "duplicate-names": (set_("models", [{"path": "a/x", "name": "m"}, {"path": "b/y", "name": "m"}]),
                        "duplicate models name(s) ['m']"),
    "bad-regex": (set_("datasets.0.doc_regex", "(["), "not a valid regular expression"),
    "unknown-baseline": (set_("output.baseline", "tinyy"), "did you mean 'tiny'"),
    "cuda-without-gpu": (set_("eval.device", "cuda"), "no CUDA device is available"),
    "prefix-not-a-token": (set_("eval.prefix", "<nope>"), "not a single token of this tokenizer"),
    # model
    "model-path-missing": (set_("models.0.path", "/no/such/model"), "model path '/no/such/model' does not exist"),
    "model-path-is-a-text-file": (lambda c, t, m: (t.joinpath("model.txt").write_text("not a model\n"),
                                                   c["models"][0].update(path=str(t / "model.txt"))),
                                  "is a file; expected a folder, a .gguf file or a hub id"),
    "hub-model-not-cached": (set_("models.0.path", "nobody-here/not-in-any-cache"),
                             "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"),
    "folder-without-config": (lambda c, t, m: (t.joinpath("empty").mkdir(), c["models"][0].update(path=str(t / "empty"))),
                              "has no config.json"),
    "gguf-truncated": (use_model("gguf-truncated"), "could not be loaded"),
    "gguf-unsupported-arch": (use_model("gguf-unicorn"), "unicorn"),
    "window-beyond-model-strict": (lambda c, t, m: c["eval"].update(window=4096, stride=4096, strict_window=True),
                                   "exceeds tiny's maximum of 512 positions"),
    "no-bos-no-eos": (use_model("no-special-tokens"), "needs a tokenizer with a BOS or EOS token"),
    "remote-code-not-allowed": (use_model("remote-code"), "set trust_remote_code: true if you trust its source"),
    "pickle-not-allowed": (use_model("pickle-only"), "set allow_pickle: true"),
    # data
    "data-file-missing": (set_("datasets.0.path", "/no/such/data.jsonl"), "file '/no/such/data.jsonl' does not exist"),
    "not-utf8": (data_file("latin1.txt", "caf\xe9 au lait".encode("latin-1")),
                 "not valid UTF-8 at byte offset 3; fix the file or set encoding_errors: replace"),
    "missing-text-field": (set_("datasets.0.text_field", "body"), "unknown text_field 'body'"),
    "empty-dataset": (data_file("empty.jsonl", b'{"text": ""}\n{"text": ""}\n'), "no non-empty documents"),
    "bad-json-line": (data_file("bad.jsonl", b'{"text": "ok"}\n{"text": \n'), "line 2 is not valid JSON"),
    "row-without-text": (data_file("nokey.jsonl", b'{"text": "ok"}\n{"title": "x"}\n'),
                         "nokey.jsonl: line 2 has no 'text' (the key is missing)"),
    "row-with-null-text": (data_file("null.jsonl", b'{"text": "ok"}\n{"text": null}\n'),
                           "null.jsonl: line 2 has no 'text' (it is null)"),
    # runtime
    "nan-logits": (use_model("nan"), "non-finite logits in document #0, window 0"),
    "unwritable-output": (out_under_a_file, "output.dir: cannot write"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, tiny_model_dir, capsys):
    edit, expected = CASES[case]
    cfg = base_config(tmp_path, tiny_model_dir)
    if case == "yaml-syntax":
        path = tmp_path / "cfg.yaml"
        path.write_text("models:\n  - path: x\n datasets: [\n")
    elif case == "missing-config-file":
        path = tmp_path / "nope.yaml"
    else:
        edit(cfg, tmp_path, tiny_model_dir)
        path = write(tmp_path, cfg)
    rc = main(["run", str(path), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    assert not list(tmp_path.rglob("results.json"))
    # nothing is left behind: no run folder, and not the folders made for it
    assert not (tmp_path / "results").exists(), sorted(tmp_path.joinpath("results").rglob("*"))


def test_bad_overrides(tmp_path, tiny_model_dir, capsys):
    path = write(tmp_path, base_config(tmp_path, tiny_model_dir))
    assert main(["run", str(path), "--quiet", "models.5.dtype=float32"]) == 2
    assert "not an index of a list of 1" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["run", str(path), "--quiet", "eval.stride"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "overrides are key=value" in err


def test_out_of_memory_backs_off_then_fails_clearly(tmp_path, tiny_model_dir, capsys, caplog, monkeypatch):
    from lm_eval_it.backends.hf import scorer as scoring

    path = write(tmp_path, base_config(tmp_path, tiny_model_dir))
    assert main(["run", str(path), "--quiet", "eval.batch_size=1", "output.run_name=ref"]) == 0
    real = scoring.Scorer.chunks

    def flaky(self, ids, *rest):  # out of memory whenever more than one window is in a batch
        if ids.shape[0] > 1:
            raise torch.OutOfMemoryError("simulated")
        return real(self, ids, *rest)

    monkeypatch.setattr(scoring.Scorer, "chunks", flaky)
    assert main(["run", str(path), "--quiet", "eval.batch_size=8", "output.run_name=oom"]) == 0
    # the plan's one batch holds 7 windows: halved to 3, then to 1, when those fail too
    backoffs = [r.getMessage() for r in caplog.records if "out of memory" in r.getMessage()]
    assert backoffs == ["out of memory; retrying with batch_size 3", "out of memory; retrying with batch_size 1"]
    ref, oom = (json.loads(next((tmp_path / "results" / n).glob("*/results.json")).read_text()) for n in ("ref", "oom"))
    assert [d["nll"] for d in oom["results"][0]["per_document"]] == pytest.approx(
        [d["nll"] for d in ref["results"][0]["per_document"]], rel=1e-6)
    monkeypatch.setattr(scoring.Scorer, "chunks", lambda *a: (_ for _ in ()).throw(torch.OutOfMemoryError("x")))
    assert main(["run", str(path), "--quiet", "eval.batch_size=1", "output.run_name=oom1"]) == 2
    assert "out of memory with batch_size 1" in capsys.readouterr().err


ODD_TEXTS = {
    "single-char": "x",
    "nul-bytes": "before\x00after\x00",
    "mixed-newlines": "crlf line\r\nlf line\nlone cr\rend",
    "long-line": "word " * 4000,
    "unicode": "naïve café — 東京 🚀",
}


def test_odd_but_valid_documents_are_scored_byte_for_byte(tmp_path, tiny_model_dir, capsys):
    cfg = base_config(tmp_path, tiny_model_dir)
    data = tmp_path / "odd.jsonl"
    rows = [{"text": t} for t in ODD_TEXTS.values()] + [{"text": ""}, {"text": ""}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg["datasets"][0]["path"] = str(data)
    assert main(["run", str(write(tmp_path, cfg)), "--quiet"]) == 0
    res = json.loads(next(tmp_path.rglob("results.json")).read_text())
    (row,) = res["results"]
    assert res["datasets"][0]["skipped_empty"] == 2 and row["metrics"]["docs"] == len(ODD_TEXTS)
    per = row["per_document"]
    assert [d["bytes"] for d in per] == [len(t.encode()) for t in ODD_TEXTS.values()]  # CRLF = 2 bytes, as stored
    assert [d["chars"] for d in per] == [len(t) for t in ODD_TEXTS.values()]
    assert per[0]["tokens"] == 1 and per[0]["nll"] > 0
    assert all(math.isfinite(d["nll"]) for d in per)
    assert row["roundtrip"]["lossy_documents"] == 0
