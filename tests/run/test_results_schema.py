"""The typed results document: the checked-in schema is the generated one, and a run's results.json round-trips."""

import json
import math
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, corpus

from lm_eval_it.cli import main
from lm_eval_it.run.results import SCHEMA, DatasetResult, ResultsDocument, json_schema


def test_the_checked_in_schema_is_the_one_the_model_generates():
    assert json.loads((REPO / "results" / "schema.json").read_text()) == json_schema()
    out = subprocess.run([sys.executable, "-W", "ignore::RuntimeWarning", "-m", "lm_eval_it.run.results"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out == (REPO / "results" / "schema.json").read_text()


def test_the_schema_says_schema_2_and_accepts_unknown_statistic_blocks():
    s = json_schema()
    assert s["properties"]["schema"]["default"] == SCHEMA == 2
    row = s["$defs"]["DatasetResult"]
    assert row["additionalProperties"] is True and "target_rank" in row["properties"]
    assert {"model", "dataset", "metrics", "intervals", "per_document", "timing", "eval"} <= set(row["required"])


def run_config(tmp_path, tiny_model_dir, **eval_extra):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t[:300]}) + "\n" for t in corpus()[:3]))
    cfg = {"models": [{"name": "tiny", "path": str(tiny_model_dir)}], "datasets": [{"name": "d", "path": str(data)}],
           "eval": {"window": 32, "stride": 16, "batch_size": 2, "device": "cpu", **eval_extra},
           "output": {"dir": str(tmp_path / "out"), "run_name": "r", "plots": False}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--quiet"]) == 0
    (f,) = (tmp_path / "out" / "r").glob("*/results.json")
    return f


def test_a_run_results_json_validates_and_round_trips_through_the_model(tmp_path, tiny_model_dir):
    jsonschema = pytest.importorskip("jsonschema")
    f = run_config(tmp_path, tiny_model_dir, temperatures=[0.8, 1.0])
    data = json.loads(f.read_text())
    assert data["schema"] == 2 and data["complete"] is True
    jsonschema.Draft202012Validator(json.loads((REPO / "results" / "schema.json").read_text())).validate(data)
    doc = ResultsDocument.model_validate(data)
    assert doc.to_dict() == data  # nothing dropped, nothing added, no value changed (ints stay ints)
    assert isinstance(data["results"][0]["metrics"]["tokens"], int)
    assert doc.results[0].temperature["temperatures"] == [0.8, 1.0]


def test_a_row_keeps_unknown_blocks_and_writes_nan_as_given():
    f = {"model": "m", "dataset": "d", "model_fingerprint": "x", "dataset_fingerprint": "y",
         "tokenizer": {"class": "T", "vocab_size": 3, "bos": None, "eos": None, "adds_bos": False, "adds_eos": False,
                       "fingerprint": "z"},
         "eval": {"window": 4, "stride": 4, "window_unit": "tokens", "batch_size": 1, "prefix": "none",
                  "prefix_token_id": None, "windows": 1, "min_context": 1, "configured_window": 4,
                  "configured_stride": None, "text_tokens_per_window": 4},
         "metrics": {k: 1 for k in ("nll", "tokens", "bytes", "words", "chars", "docs")}
         | {k: math.nan for k in ("nll_per_token", "token_perplexity", "bits_per_token", "bits_per_byte",
                                  "byte_perplexity", "bits_per_word", "word_perplexity", "bits_per_char",
                                  "tokens_per_byte", "tokens_per_word", "bytes_per_token")},
         "intervals": {"bits_per_token": None, "token_perplexity": None, "bits_per_byte": None,
                       "bits_per_word": None, "bits_per_char": None, "method": "linearised_t", "level": 0.95,
                       "documents": 1, "few_documents": True, "documents_without_scored_tokens": 0, "se": {},
                       "df": {}},
         "roundtrip": {"lossy_documents": 0, "lossy_bytes": 0, "sample": None, "inserted_bytes": 0,
                       "deleted_bytes": 0},
         "documents": 1, "timing": {"seconds": 1, "scoring_seconds": 0.5, "tokens_scored_here": 1,
                                    "tokens_per_second": 2.0},
         "per_token": None, "resumed_documents": 0,
         "per_document": [{"index": 0, "nll": 1, "tokens": 1, "bytes": 1, "words": 1, "chars": 1, "extra": 7}],
         "new_statistic": {"buckets": [0.5, 0.5]}}
    row = DatasetResult.from_row(f)
    out = row.to_dict()
    assert out["new_statistic"] == {"buckets": [0.5, 0.5]} and out["per_document"][0]["extra"] == 7
    assert math.isnan(out["metrics"]["bits_per_byte"]) and out["metrics"]["nll"] == 1
    assert type(out["timing"]["seconds"]) is int and type(out["metrics"]["nll"]) is int
    assert out["tokenizer"]["class"] == "T" and "temperature" not in out  # only the keys given
    assert list(out)[:5] == ["model", "dataset", "model_fingerprint", "dataset_fingerprint", "tokenizer"]
