"""The Python API, called as a training loop would: a live model between optimiser steps."""

import json

import pytest
import torch
from conftest import corpus, run_path, write_config

from lm_eval_it import evaluate


def test_evaluate_a_live_model_inside_a_training_loop(tmp_path, tiny_model_dir, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    texts = [t[:400] for t in corpus()[:4]]
    model.train()
    first = evaluate(model=model, tokenizer=tok, texts=texts, window=32, stride=16, batch_size=2, device="cpu")
    assert model.training  # its mode is restored
    assert capsys.readouterr().out == ""  # nothing printed unless asked
    assert not (tmp_path / "results").exists()
    # the same numbers as the command line on the saved model
    cli = run_path(write_config(tmp_path, {"tiny": tiny_model_dir}, texts, name="c",
                                eval={"window": 32, "stride": 16, "batch_size": 2, "device": "cpu"},
                                output={"dir": str(tmp_path / "cli"), "plots": False})).results["results"][0]
    assert [d["nll"] for d in first.per_document] == [d["nll"] for d in cli["per_document"]]
    assert first.bits_per_byte == cli["metrics"]["bits_per_byte"] and first.to_dict()["metrics"] == cli["metrics"]
    # a few optimiser steps on the texts lower the loss, and evaluate sees it
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    ids = tok(" ".join(texts), return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256]
    for _ in range(5):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    later = evaluate(model=model, tokenizer=tok, texts=texts, window=32, stride=16, batch_size=2, device="cpu",
                     temperatures=[0.5, 1.0])
    assert later.bits_per_byte < first.bits_per_byte
    assert later.temperature["temperatures"] == [0.5, 1.0] and model.training
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)  # untouched by evaluate


def test_evaluate_writes_files_only_when_asked(tmp_path, tiny):
    model, tok = tiny
    res = evaluate(model=model, tokenizer=tok, texts=["Hello there.", "General Kenobi."], window=16,
                   output_dir=tmp_path / "out", name="api", device="cpu")
    assert res.folder is not None and (res.folder / "results.json").is_file()
    assert json.loads((res.folder / "results.json").read_text())["results"][0]["metrics"] == res.metrics


def test_evaluate_needs_exactly_one_source(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="exactly one"):
        evaluate(model=model, tokenizer=tok)


def test_evaluate_a_path_on_texts_scores_those_texts_and_leaves_nothing(tmp_path, tiny_model_dir, tiny, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model, tok = tiny
    texts = ["The quick brown fox.", "Second text, a little longer than the first."]
    by_path = evaluate(model=str(tiny_model_dir), texts=texts, window=16, device="cpu")
    live = evaluate(model=model, tokenizer=tok, texts=texts, window=16, device="cpu")
    assert len(by_path.per_document) == 2  # the texts given, not a default dataset
    assert [d["nll"] for d in by_path.per_document] == [d["nll"] for d in live.per_document]
    on_data = evaluate(model=str(tiny_model_dir), dataset={"builtin": "pydoc_topics", "limit": 1}, window=16,
                       device="cpu")
    assert on_data.folder is None and list(tmp_path.iterdir()) == []  # nothing written or left behind


def test_help_shows_the_real_signature_and_docstring_of_evaluate():
    import inspect
    import pydoc
    import subprocess
    import sys

    import lm_eval_it
    import lm_eval_it.api

    assert lm_eval_it.evaluate is lm_eval_it.api.evaluate
    params = inspect.signature(lm_eval_it.evaluate).parameters
    assert list(params)[:4] == ["model", "tokenizer", "texts", "dataset"] and params["window"].default == 1024
    text = pydoc.render_doc(lm_eval_it.evaluate, renderer=pydoc.plaintext)
    assert "evaluate(model" in text and "*args" not in text
    assert "Returns:" in text and "output_dir:" in text and "bits_per_byte" in text
    # importing the package stays light: torch loads only when evaluate runs
    probe = "import sys, lm_eval_it; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out == "False False\n"
