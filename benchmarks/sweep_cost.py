"""What a temperature sweep adds to the wall time of scoring (same process, same windows).

    python benchmarks/sweep_cost.py --docs 4 --repeats 2 --out benchmarks/data/sweep_cost.json

SmolLM2-135M (float32, CPU), window = stride = 1024, WikiText-2 test articles.
Three passes alternate: plain scoring, scoring with the 9-temperature sweep but no
search temperatures, and the full sweep (with the search temperatures that bracket the
best T); the best time of each is kept and the ratios are reported (absolute times on a
shared machine are noise). The summary (best-T interpolation, calibration, quantiles)
is timed on its own: it works on dataset totals, so it costs milliseconds.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from smol_wikitext import smol_wikitext

from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.stats.temperature.sweep import TemperatureStats

TEMPS = [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=4)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out")
    args = ap.parse_args()
    texts, prepared, tokens, scorer = smol_wikitext(args.docs, args.window)
    variants = {"plain": lambda: [], "sweep_no_search": lambda: [TemperatureStats(TEMPS, scorer.vocab, search=False)],
                "sweep": lambda: [TemperatureStats(TEMPS, scorer.vocab)]}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, stats in variants.items():
            ex = Executor(prepared, scorer, stats(), args.batch_size, stat_threads=1)
            t0 = time.perf_counter()
            results = list(ex.run())
            times[name].append(time.perf_counter() - t0)
    red = Reduction(ex.layout, prepared)
    for r in results:
        red.add(r)
    t0 = time.perf_counter()
    stat = ex.stats[0]
    summary = stat.summarize(red.of(stat), {"tokens": tokens, "bytes": sum(len(t.encode()) for t in texts)})
    summary_s = time.perf_counter() - t0
    p = min(times["plain"])
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "documents": len(texts), "tokens": tokens, "temperatures": TEMPS,
        "search_temperatures": stat.search, "plain_tokens_per_s": tokens / p,
        "sweep_overhead": min(times["sweep"]) / p - 1, "sweep_no_search_overhead": min(times["sweep_no_search"]) / p - 1,
        "summary_seconds": summary_s, "summary_vs_plain": summary_s / p,
        "best_T": summary["best"]["temperature"], "best_T_label": summary["best"]["label"], "times": times,
    }
    print(f"{tokens} tokens, {len(TEMPS)} temperatures (+{len(stat.search)} search): sweep adds "
          f"{100 * result['sweep_overhead']:.1f}% to scoring ({100 * result['sweep_no_search_overhead']:.1f}% without "
          f"the search temperatures); summary {summary_s * 1000:.0f} ms ({100 * summary_s / p:.2f}% of scoring); "
          f"best T = {result['best_T']} ({result['best_T_label']})")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
