"""The speed paths keep the numbers: blocked log-sum-exp, one host wait per batch, the GPU check's dry run."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from lm_eval_it.backends.hf.scorer import Scorer
from lm_eval_it.backends.logits import token_nll
from lm_eval_it.engine.execute import score_sequences
from lm_eval_it.engine.windows import plan_windows

ROOT = Path(__file__).resolve().parents[2]


def test_blocked_logsumexp_is_bit_identical():
    torch.manual_seed(0)
    logits = torch.randn(37, 1000) * 5
    tgt = torch.randint(0, 1000, (37,))
    whole = token_nll(logits, tgt, block=None)
    for block in (1, 1000, 3000, 7777, 10**9):
        assert torch.equal(token_nll(logits, tgt, block=block), whole)


def _tiny():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check import tiny_model

    return tiny_model()


def test_scores_do_not_depend_on_chunking_or_batching():
    model = _tiny()
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 512, n).astype(np.int32) for n in (300, 81, 700)]
    plans = [plan_windows(len(s), 128, 64) for s in seqs]
    ref = score_sequences(Scorer(model, "cpu"), seqs, plans, 1)
    small = score_sequences(Scorer(model, "cpu", logit_budget=512 * 7), seqs, plans, 5)  # many chunks per batch
    for a, b in zip(ref, small):
        np.testing.assert_allclose(a.token_nll, b.token_nll, rtol=1e-6, atol=0)
        assert abs(a.nll - b.nll) <= 1e-6 * abs(a.nll)


def test_gpu_check_dry_run(tmp_path):
    out = tmp_path / "gpu.json"
    subprocess.run(["bash", str(ROOT / "benchmarks/gpu.sh"), "--dry-run", str(out)], check=True, cwd=ROOT,
                   env={**__import__("os").environ, "PYTHON": sys.executable}, timeout=300)
    res = json.loads(out.read_text())
    assert res["dry_run"] and res["parity_fp32"]["ok"]
    assert {r["window"] for r in res["bf16_throughput"]} == {256, 512}
    assert all(r["tok_s"] > 0 for r in res["bf16_throughput"])
    sw = res["sweep_overhead"]  # the 9-temperature sweep on the same windows: fused kernel (auto) and eager
    assert sw["model"] == "tiny-random-llama" and len(sw["temperatures"]) == 9 and sw["tokens"] > 0
    assert sw["auto"]["kernel"] in ("compiled", "eager") and sw["eager"]["kernel"] == "eager"
    assert sw["plain_seconds"] > 0 and all(sw[k]["overhead"] > -1 for k in ("auto", "eager"))
    assert max(sw["max_rel_diff_vs_eager"].values()) < 1e-5


def test_bf16_peak_table():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_check import bf16_peak

    assert bf16_peak("NVIDIA H200") == 989e12
    assert bf16_peak("NVIDIA H100 PCIe") == 756e12
    assert bf16_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert bf16_peak("NVIDIA L4") == 121e12
    assert bf16_peak("Some GPU") is None
