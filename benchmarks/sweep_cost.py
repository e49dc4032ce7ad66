"""What a temperature sweep adds to the wall time of scoring (same process, same windows, one thread).

    python benchmarks/sweep_cost.py --docs 2 --repeats 3 --out benchmarks/data/sweep_cost.json

SmolLM2-135M (float32, CPU), window = stride = 1024, the first WikiText-2 test articles, torch on
one thread. Each compiled variant first runs one untimed warm-up pass (compile, or the cache's load); the
timed passes then alternate, and each variant's best time and its paired median are reported (absolute
times on a shared machine are noise; the ratios are the result, and ``--repeats`` below 2 gives no median
worth the name):

* ``plain`` — scoring without a sweep;
* ``sweep9`` — the 9 temperatures 0.5 … 2.0 with their search temperatures (best T included), with the
  fused kernel (``compiled``) and with the eager one;
* ``single`` — temperatures [1.0] with its search temperatures, compiled and eager;
* ``*_before`` — the eager kernel with the search temperatures of the earlier rule (decades 1e-3 … 1e3 and
  fill points a factor 1.2 apart): what the sweep cost before the fused kernel, measured in the same run.

For each variant it reports the overhead over plain scoring (wall time: best against best, and the median
over repeats of each pass against the same repeat's plain pass; either can come out below zero when the
forward's run-to-run noise exceeds the sweep's cost), the share of
plain's time spent inside the sweep's per-row statistics (the kernel's own cost, free of the forward's
run-to-run noise), the number of search temperatures and the cost per vocabulary entry per temperature
in ns (from the wall times). It also checks that the compiled and eager kernels
give the same totals (entropy, NLL, top-1 probability, both derivatives at every swept T; largest
relative difference) and the same best T, and times the first compiled pass (compile included).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from smol_wikitext import smol_wikitext

from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.stats.temperature.sweep import TemperatureStats

SWEEP9 = [0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0]
# the search temperatures of the rule this replaced (decades, fill points a factor 1.2 apart), for "before"
BEFORE = {"sweep9": [0.001, 0.01, 0.1, 0.5916, 1.442, 1.789, 10.0, 100.0, 1000.0],
          "single": [0.001, 0.01, 0.1, 0.5, 0.5946, 0.7071, 0.8409, 1.189, 1.414, 1.682, 2.0, 10.0, 100.0, 1000.0]}
TEMPS = {"sweep9": SWEEP9, "single": [1.0]}
KEYS = ("entropy", "nll", "top1_prob", "d1", "d2")


def make(name: str, vocab: int):
    """The statistics of one variant (``plain``, ``sweep9_compiled``, ``single_eager_before``, ...)."""
    if name == "plain":
        return []
    case, kernel, *before = name.split("_")
    stat = TemperatureStats(TEMPS[case], vocab, kernel=kernel)
    if before:
        stat.search = list(BEFORE[case])
    return [stat]


def timed(prepared, scorer, stats, batch_size: int):
    """``(wall seconds, seconds inside the statistics' rows, executor, results)`` of one scoring pass."""
    inside = [0.0]
    for stat in stats:
        rows = stat.rows

        def clocked(chunk, rows=rows):
            t = time.perf_counter()
            out = rows(chunk)
            inside[0] += time.perf_counter() - t
            return out
        stat.rows = clocked
    ex = Executor(prepared, scorer, stats, batch_size, stat_threads=1)
    t0 = time.perf_counter()
    results = list(ex.run())
    return time.perf_counter() - t0, inside[0], ex, results


def totals(ex, prepared, results, context) -> dict:
    red = Reduction(ex.layout, prepared)
    for r in results:
        red.add(r)
    stat = ex.stats[0]
    tot = red.of(stat)
    return {"sums": {k: np.asarray(tot[k], dtype=np.float64) for k in KEYS}, "best": stat.summarize(tot, context)["best"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--variants", default="all", help="comma-separated subset of the variants (plain always runs)")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    texts, prepared, tokens, scorer = smol_wikitext(args.docs, args.window)
    context = {"tokens": tokens, "bytes": sum(len(t.encode()) for t in texts)}
    names = ["plain"] + [f"{c}_{k}" for c in ("sweep9", "single") for k in ("compiled", "eager")] + \
            [f"{c}_eager_before" for c in ("sweep9", "single")]
    if args.variants != "all":
        names = ["plain"] + [n for n in names[1:] if n in args.variants.split(",")]
    times: dict[str, list[float]] = {k: [] for k in names}
    inside: dict[str, list[float]] = {k: [] for k in names}
    if args.repeats < 2:
        print(f"warning: --repeats {args.repeats}: one pass per variant, so the overheads are single samples of a noisy wall time")
    first_compiled = None
    for name in [n for n in names if n.endswith("compiled")]:  # warm-up: compile outside the timed passes
        t_warm = timed(prepared, scorer, make(name, scorer.vocab), args.batch_size)[0]
        first_compiled = first_compiled or (name, t_warm)  # the first compiled pass, compile included
    kept: dict[str, dict] = {}
    for rep in range(args.repeats):
        for name in names:
            stats = make(name, scorer.vocab)
            t, t_in, ex, results = timed(prepared, scorer, stats, args.batch_size)
            times[name].append(t)
            inside[name].append(t_in)
            if rep == 0 and stats:
                kept[name] = totals(ex, prepared, results, context) | {"search": list(stats[0].search),
                                                                        "kernel": sorted(stats[0].kernels_run)}
    plain = min(times["plain"])
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "documents": len(texts), "tokens": tokens, "vocab": scorer.vocab, "plain_tokens_per_s": tokens / plain,
           "first_compiled_pass_extra_s": first_compiled[1] - min(times[first_compiled[0]]) if first_compiled
           else None, "variants": {}}
    for name in names[1:]:
        k = kept[name]
        n_t = len(TEMPS[name.split("_")[0]]) + len(k["search"])
        extra = min(times[name]) - plain
        out["variants"][name] = {
            "overhead": min(times[name]) / plain - 1, "temperatures": TEMPS[name.split("_")[0]],
            # each repeat's pass against that repeat's plain pass, the median over repeats: less sensitive to
            # the forward's drift between repeats than the ratio of the two best times
            "overhead_paired_median": float(np.median([t / p - 1 for t, p in zip(times[name], times["plain"])])),
            "statistics_share": min(inside[name]) / plain,  # seconds inside the sweep's rows, over plain's wall
            "search_temperatures": k["search"], "kernel": k["kernel"],
            "ns_per_vocab_entry_per_T": extra / (tokens * scorer.vocab * n_t) * 1e9,
            "best_T": k["best"]["temperature"], "best_label": k["best"]["label"]}
    for case in [c for c in ("sweep9", "single") if f"{c}_compiled" in kept and f"{c}_eager" in kept]:
        a, b = kept[f"{case}_compiled"], kept[f"{case}_eager"]
        out["variants"][f"{case}_compiled"]["max_rel_diff_vs_eager"] = {
            key: float(np.max(np.abs(a["sums"][key] - b["sums"][key]) / np.abs(b["sums"][key]))) for key in KEYS}
        out["variants"][f"{case}_compiled"]["best_T_eager"] = b["best"]["temperature"]
    out["times"], out["statistics_seconds"] = times, inside
    for name, v in out["variants"].items():
        print(f"{name:22s} {100 * v['overhead']:+6.1f}% (paired median {100 * v['overhead_paired_median']:+.1f}%, "
              f"statistics {100 * v['statistics_share']:5.1f}%)  "
              f"{len(v['temperatures'])} T + {len(v['search_temperatures'])} "
              f"search  {v['ns_per_vocab_entry_per_T']:.3f} ns/entry/T  kernel {'+'.join(v['kernel'])}  "
              f"best T {v['best_T']}")
    for case in [c for c in ("sweep9", "single") if "max_rel_diff_vs_eager" in out["variants"].get(f"{c}_compiled", {})]:
        v = out["variants"][f"{case}_compiled"]
        print(f"{case}: compiled vs eager totals, largest relative difference "
              + ", ".join(f"{k} {x:.1e}" for k, x in v["max_rel_diff_vs_eager"].items())
              + f"; best T {v['best_T']} vs {v['best_T_eager']}")
    first = out["first_compiled_pass_extra_s"]
    print(f"{tokens} tokens, plain {tokens / plain:.0f} tokens/s; "
          + (f"first compiled pass (compile included) +{first:.1f} s over its best" if first is not None
             else "first compiled pass: not measured (no compiled variant)"))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
