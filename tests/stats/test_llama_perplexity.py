"""protocol llama-perplexity on the tiny model: PPL ± SE against a brute-force float64 recomputation."""

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from lm_eval_it.backends.tokenizer import encode, token_byte_lengths
from lm_eval_it.cli import main
from lm_eval_it.stats.llama_perplexity import llama_ppl

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 5, "tiny", "Zwölf Boxkämpfer jagen Viktor quer über den "
         "Sylter Deich; 日本語のテキスト. " * 3]
N_CTX = 16


def _run(tmp_path, tiny_model_dir, **ev):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    cfg = {"models": [{"name": "m", "path": str(tiny_model_dir)}],
           "datasets": [{"name": "d", "path": str(tmp_path / "d.jsonl")}],
           "eval": {"window": N_CTX, "device": "cpu", "protocol": "llama-perplexity", **ev},
           "output": {"dir": str(tmp_path / "out"), "run_name": "r", "plots": False, "per_token": True}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "cfg.yaml"), "--quiet"]) == 0
    (folder,) = (tmp_path / "out" / "r").iterdir()
    return folder, json.loads((folder / "results.json").read_text())


def brute_force(model, tok, chunks=None):
    """llama.cpp's loop, by hand: chunks of N_CTX text tokens (this tokenizer adds no BOS), second half scored."""
    nll, nbytes, table, left = [], 0, token_byte_lengths(tok), chunks
    for ids in encode(tok, TEXTS):
        for c in range(len(ids) // N_CTX):
            if left is not None and left == 0:
                break
            left = None if left is None else left - 1
            x = torch.tensor([ids[c * N_CTX:(c + 1) * N_CTX]])
            with torch.no_grad():
                lp = torch.log_softmax(model(x).logits[0].double(), -1)
            for p in range(N_CTX // 2, N_CTX - 1):
                nll.append(-float(lp[p, ids[c * N_CTX + p + 1]]))
                nbytes += int(table[ids[c * N_CTX + p + 1]])
    return np.array(nll), nbytes


def test_ppl_and_se_match_a_brute_force_float64_recomputation(tmp_path, tiny, tiny_model_dir):
    model, tok = tiny
    folder, res = _run(tmp_path, tiny_model_dir)
    row = res["results"][0]
    lp = row["llama_perplexity"]
    nll, nbytes = brute_force(model, tok)
    n = len(nll)
    assert lp["scored_tokens"] == n == row["metrics"]["tokens"] and lp["chunks"] == n // (N_CTX - 1 - N_CTX // 2)
    assert lp["n_ctx"] == N_CTX and lp["bos_replaced"] is False
    mean = nll.sum() / n
    se = math.sqrt((np.square(nll).sum() / n - mean ** 2) / (n - 1))
    assert lp["nll_mean"] == pytest.approx(mean, rel=1e-5) and lp["nll_se"] == pytest.approx(se, rel=1e-4)
    assert lp["ppl"] == pytest.approx(math.exp(mean), rel=1e-5)
    assert lp["ppl_se"] == pytest.approx(se * math.exp(mean), rel=1e-4)
    # bits per byte over the scored tokens' bytes only
    assert row["metrics"]["bytes"] == nbytes
    # the per-token NLLs it wrote give the same PPL in float64
    table = pq.read_table(next((folder / "per_token-m-d").glob("*.parquet")))
    col = np.asarray(table.column("nll"), dtype=np.float64)
    ref = llama_ppl(col.sum(), np.square(col).sum(), len(col))
    assert lp["ppl"] == pytest.approx(ref["ppl"], rel=1e-9) and lp["ppl_se"] == pytest.approx(ref["ppl_se"], rel=1e-7)
    assert row["eval"]["protocol"] == "llama-perplexity" and row["eval"]["n_ctx"] == N_CTX
    md = (folder / "summary.md").read_text()
    assert f"PPL = {lp['ppl']:.4f} ± {lp['ppl_se']:.5f}, {lp['chunks']} chunks of {N_CTX}" in md


def test_the_chunks_limit_takes_the_first_chunks_in_document_order(tmp_path, tiny, tiny_model_dir):
    model, tok = tiny
    _, res = _run(tmp_path, tiny_model_dir, chunks=3)
    lp = res["results"][0]["llama_perplexity"]
    nll, _ = brute_force(model, tok, chunks=3)
    assert lp["chunks"] == 3 and res["results"][0]["eval"]["chunks"] == 3
    assert lp["nll_mean"] == pytest.approx(nll.mean(), rel=1e-5)


def test_the_cli_flags_select_the_protocol_and_a_bad_combination_is_one_line(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    cfg = {"models": [{"name": "m", "path": str(tiny_model_dir)}],
           "datasets": [{"name": "d", "path": str(tmp_path / "d.jsonl")}], "eval": {"window": N_CTX, "device": "cpu"},
           "output": {"dir": str(tmp_path / "out"), "run_name": "r", "plots": False}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "cfg.yaml"), "--quiet", "--protocol", "llama-perplexity", "--chunks", "2"]) == 0
    (folder,) = (tmp_path / "out" / "r").iterdir()
    row = json.loads((folder / "results.json").read_text())["results"][0]
    assert row["llama_perplexity"]["chunks"] == 2 and row["eval"]["protocol"] == "llama-perplexity"
    assert row["metrics"]["tokens"] == 2 * (N_CTX - 1 - N_CTX // 2)
    capsys.readouterr()
    assert main(["run", str(tmp_path / "cfg.yaml"), "--quiet", "--chunks", "2"]) != 0
    err = capsys.readouterr().err.strip()
    assert "eval.chunks needs `protocol: llama-perplexity`" in err and "Traceback" not in err


def test_a_strided_run_has_no_block(tmp_path, tiny_model_dir):
    (tmp_path / "d.jsonl").write_text(json.dumps({"text": TEXTS[0]}) + "\n")
    cfg = {"models": [{"name": "m", "path": str(tiny_model_dir)}],
           "datasets": [{"name": "d", "path": str(tmp_path / "d.jsonl")}], "eval": {"window": N_CTX, "device": "cpu"},
           "output": {"dir": str(tmp_path / "out"), "run_name": "r", "plots": False}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "cfg.yaml"), "--quiet"]) == 0
    (folder,) = (tmp_path / "out" / "r").iterdir()
    row = json.loads((folder / "results.json").read_text())["results"][0]
    assert row["llama_perplexity"] is None and row["eval"]["protocol"] == "strided" and row["eval"]["n_ctx"] is None
    assert "llama.cpp perplexity" not in (folder / "summary.md").read_text()
