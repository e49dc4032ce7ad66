"""What target-rank buckets (``eval.target_rank: true``) add to the time of scoring (same process, same windows).

    python benchmarks/target_rank_cost.py --docs 2 --repeats 3

SmolLM2-135M (float32, CPU), window = stride = 1024, WikiText-2 test articles. Plain scoring and
scoring with the target-rank statistic alternate; the best time of each is kept and their ratio is
reported (absolute times on a shared machine are noise).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from smol_wikitext import smol_wikitext

from lm_eval_it.engine.execute import Executor
from lm_eval_it.stats.target_rank import TargetRankStats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--out")
    args = ap.parse_args()
    texts, prepared, tokens, scorer = smol_wikitext(args.docs, args.window)
    variants = {"plain": lambda: [], "target_rank": lambda: [TargetRankStats()]}
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, stats in variants.items():
            ex = Executor(prepared, scorer, stats(), args.batch_size, stat_threads=1)
            t0 = time.perf_counter()
            list(ex.run())
            times[name].append(time.perf_counter() - t0)
    overhead = min(times["target_rank"]) / min(times["plain"]) - 1
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "threads": torch.get_num_threads(),
              "documents": len(texts), "tokens": tokens, "vocab": scorer.vocab, "overhead": overhead, "times": times}
    print(f"{tokens} tokens, vocabulary {scorer.vocab}: target-rank buckets add {100 * overhead:.1f}% to scoring "
          f"(best of {args.repeats} each, {torch.get_num_threads()} thread(s))")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
