"""One builder for the CLI and evaluate(): the same row fields, the same numbers, the same document keys."""

import json

import yaml
from conftest import corpus

from lm_eval_it import evaluate
from lm_eval_it.api import EvalResult
from lm_eval_it.cli import main
from lm_eval_it.run.results import DatasetResult

TIMING = {"timing"}


def test_cli_and_evaluate_build_the_same_row_and_document_fields(tmp_path, tiny_model_dir, tiny):
    model, tok = tiny
    texts = [t[:300] for t in corpus()[:3]]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "tiny", "path": str(tiny_model_dir)}],
                                   "datasets": [{"name": "d", "path": str(data)}],
                                   "eval": {"window": 32, "stride": 16, "batch_size": 2, "device": "cpu",
                                            "temperatures": [0.9, 1.0]},
                                   "output": {"dir": str(tmp_path / "cli"), "run_name": "c", "plots": False}}))
    assert main(["run", str(cfg), "--quiet"]) == 0
    (f,) = (tmp_path / "cli" / "c").glob("*/results.json")
    cli = json.loads(f.read_text())
    res = evaluate(model=model, tokenizer=tok, texts=texts, window=32, stride=16, batch_size=2, device="cpu",
                   temperatures=[0.9, 1.0], output_dir=tmp_path / "api", name="tiny")
    assert isinstance(res, EvalResult) and isinstance(res, DatasetResult)
    api = json.loads((res.folder / "results.json").read_text())
    row_cli, row_api = cli["results"][0], api["results"][0]
    assert list(row_cli) == list(row_api) == list(res.to_dict())  # the same fields, in the same order
    assert [d["nll"] for d in row_cli["per_document"]] == [d["nll"] for d in row_api["per_document"]]
    assert row_cli["metrics"] == row_api["metrics"] and row_cli["intervals"] == row_api["intervals"]
    assert row_cli["temperature"]["per_temperature"] == row_api["temperature"]["per_temperature"]
    assert api["schema"] == cli["schema"] == 2 and set(api) == set(cli)
    assert list(api["models"][0]) == list(cli["models"][0])  # evaluate()'s model entry is the CLI's (was 5 keys)


def test_an_eval_result_keeps_its_api(tiny):
    model, tok = tiny
    res = evaluate(model=model, tokenizer=tok, texts=["Hello there.", "General Kenobi."], window=16, device="cpu")
    assert res.bits_per_byte == res.metrics["bits_per_byte"] and res.perplexity == res.metrics["token_perplexity"]
    assert res.folder is None and res.temperature is None and res.kl is None and res.groups is None
    assert res.row == res.to_dict() and res.to_dict()["per_document"] == res.per_document
    again = EvalResult.from_row(res.to_dict(), folder=None)
    assert again.to_dict() == res.to_dict() and again.intervals == res.intervals
