"""compare: run names under --dir, honest statistics with few documents, and protocol checks."""

import json

import numpy as np
import pytest

from lm_eval_it.cli import main
from lm_eval_it.report.compare.build import build_comparison, comparison_markdown
from lm_eval_it.report.compare.runs import rows_from_runs
from lm_eval_it.stats.intervals import paired_delta


def fake_run(base, run, stamp, model, scale, n_docs=12, stride=8, dtype="float32", complete=True, window=16):
    """A results.json as the runner writes it (the keys compare reads), with per-document NLL = scale × bytes."""
    nbytes = [100 + 10 * i for i in range(n_docs)]
    docs = [{"nll": scale * b * (1 + 0.01 * (i % 3)), "bytes": b} for i, b in enumerate(nbytes)]
    nll, total = sum(d["nll"] for d in docs), sum(nbytes)
    metrics = {"docs": n_docs, "tokens": total // 4, "bytes": total, "nll": nll, "bits_per_byte": nll / total / np.log(2),
               "bits_per_char": 1.0, "bits_per_word": 5.0, "word_perplexity": 30.0, "token_perplexity": 10.0,
               "bits_per_token": 3.3, "tokens_per_byte": 0.25, "tokens_per_word": 1.3, "bytes_per_token": 4.0}
    row = {"model": model, "dataset": "d", "dataset_fingerprint": "f" * 64, "tokenizer": {"fingerprint": "t"},
           "metrics": metrics, "per_document": docs,
           "eval": {"window": window, "stride": stride, "window_unit": "tokens", "prefix": "bos:<s>"}}
    folder = base / run / stamp
    folder.mkdir(parents=True)
    data = {"complete": complete, "run_name": run, "results": [row], "models": [{"name": model, "dtype": dtype}]}
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def test_few_documents_never_significant():
    nbytes = np.full(5, 100.0)
    d = paired_delta(nbytes * 0.5, nbytes, nbytes * 0.9, nbytes)  # A far better on every document
    assert d["few_documents"] is True and d["significant"] is None and d["high"] < 0
    d = paired_delta(np.full(10, 50.0), np.full(10, 100.0), np.full(10, 90.0), np.full(10, 100.0))
    assert d["few_documents"] is False and d["significant"] is True


def test_run_names_resolve_to_the_newest_complete_run(tmp_path, capsys):
    base = tmp_path / "res"
    fake_run(base, "tiny", "20260101T000000Z", "tiny", 1.0)
    newest = fake_run(base, "tiny", "20260102T000000Z", "tiny", 1.1)
    fake_run(base, "tiny", "20260103T000000Z", "tiny", 9.9, complete=False)
    fake_run(base, "smol-sweep", "20260101T000000Z-2", "smol", 0.8)
    fake_run(base, "smol-sweep", "20260101T000000Z-10", "smol", 0.7)
    rows = rows_from_runs(["tiny", "smol-sweep"], base)
    assert [r["run"] for r in rows] == ["tiny/20260102T000000Z", "smol-sweep/20260101T000000Z-10"]
    assert rows[0]["per_document"][0]["nll"] == pytest.approx(110.0)
    assert main(["compare", "tiny", "smol-sweep", "--dir", str(base), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "tiny/20260102T000000Z: window 16 tokens, stride 8, prefix bos · tiny (float32)" in out
    assert main(["compare", "tinny", "--dir", str(base)]) == 2
    err = capsys.readouterr().err
    assert "run names there: smol-sweep, tiny" in err and "(did you mean 'tiny'?)" in err
    assert newest.is_dir()


def test_protocol_mismatch_is_refused_unless_allowed(tmp_path, capsys):
    base = tmp_path / "res"
    fake_run(base, "a", "20260101T000000Z", "m1", 1.0, stride=8)
    fake_run(base, "b", "20260101T000000Z", "m2", 1.2, stride=16, dtype="bfloat16")
    assert main(["compare", "a", "b", "--dir", str(base), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "different protocols" in err and "stride 16" in err and "--allow-protocol-mismatch" in err
    assert main(["compare", "a", "b", "--dir", str(base), "--out", str(tmp_path / "o"),
                 "--allow-protocol-mismatch"]) == 0
    md = (tmp_path / "o" / "comparison.md").read_text()
    assert "protocols DIFFER" in md and "m2: window 16 tokens, stride 16, prefix bos." in md
    assert "| m2 | bfloat16 |" in md  # the dtype is the model's: in its row, not in the protocol
    assert "| yes |" in md  # 12 documents, 20% worse on each: significant


def test_few_documents_table_says_so(tmp_path):
    base = tmp_path / "res"
    fake_run(base, "a", "20260101T000000Z", "m1", 1.0, n_docs=4)
    fake_run(base, "b", "20260101T000000Z", "m2", 2.0, n_docs=4)
    md = comparison_markdown(build_comparison(rows_from_runs(["a", "b"], base)))
    assert "Few documents (4 < 10)" in md and "n/a (few docs)" in md and "| yes |" not in md


def test_runs_differing_only_in_dtype_compare_and_show_each_dtype(tmp_path, capsys):
    base = tmp_path / "res"
    fake_run(base, "fp32", "20260101T000000Z", "m-fp32", 1.0)
    fake_run(base, "bf16", "20260101T000000Z", "m-bf16", 1.01, dtype="bfloat16")
    fake_run(base, "int8", "20260101T000000Z", "m-int8", 1.2, dtype="int8-dynamic(float32)")
    assert main(["compare", "fp32", "bf16", "int8", "--dir", str(base), "--out", str(tmp_path / "o")]) == 0
    md = (tmp_path / "o" / "comparison.md").read_text()
    assert "DIFFER" not in md and "Protocol (every run): window 16 tokens, stride 8, prefix bos." in md
    main_table = next(b for b in md.split("\n\n") if b.startswith("| model |")).splitlines()
    assert "dtype / quant" in main_table[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in main_table[2:]}
    assert "| float32 |" in rows["m-fp32"] and "| bfloat16 |" in rows["m-bf16"]
    assert "| int8-dynamic(float32) |" in rows["m-int8"]
    out = capsys.readouterr().out
    assert "fp32/20260101T000000Z: window 16 tokens, stride 8, prefix bos · m-fp32 (float32)" in out
    tables = build_comparison(rows_from_runs(["fp32", "bf16"], base))
    assert {e["model"]: e["dtype"] for e in tables[0]["rows"]} == {"m-fp32": "float32", "m-bf16": "bfloat16"}


def test_runs_differing_in_window_are_still_refused(tmp_path, capsys):
    base = tmp_path / "res"
    fake_run(base, "w16", "20260101T000000Z", "m1", 1.0)
    fake_run(base, "w32", "20260101T000000Z", "m2", 1.0, window=32)
    assert main(["compare", "w16", "w32", "--dir", str(base), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "different protocols" in err and "window 32 tokens" in err and "dtype" not in err
