"""Why a temperature sweep can run many times slower with 2 threads than with 1.

    python benchmarks/threads.py                      # about 3 minutes on 2 cores
    python benchmarks/threads.py --rows 1024 --repeats 2 --out /tmp/threads.json

Times, with ``torch.set_num_threads(1)`` and ``(2)``:

* ``softmax_stats`` - the per-token temperature statistics
  (:func:`lm_eval_it.stats.temperature.softmax.softmax_stats`) on a (rows, 49152) float32 block
  of logits with 9 temperatures, as the library runs it (cache-sized blocks of
  ``temperature.BLOCK`` elements, each a handful of small parallel ops);
* ``softmax_stats_big_blocks`` - the same call with ``BLOCK`` raised 32× for the
  duration (a diagnostic: fewer, larger parallel regions);
* ``forward`` - the forward pass of a random Llama with SmolLM2-135M's widths
  (4 layers instead of 30) on 2 × 512 tokens;

once on an idle machine and once with a CPU hog per core (``python -c 'while
True: pass'`` subprocesses, killed at the end). Repeats alternate 1 and 2
threads; the median of each is kept. The ratio t(2 threads) / t(1 thread) is what
matters: absolute times on a shared machine are noise. Results go to
``benchmarks/data/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from lm_eval_it.stats.temperature import softmax as temperature
from lm_eval_it.stats.temperature.softmax import softmax_stats

TEMPS = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6]
OUT = Path(__file__).resolve().parent / "data" / "threads.json"


def small_llama(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=576, intermediate_size=1536, num_hidden_layers=4,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048)
    return LlamaForCausalLM(cfg).eval()


def workloads(rows: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(rows, vocab, generator=g) * 3.0
    targets = torch.randint(0, vocab, (rows,), generator=g)
    model = small_llama(vocab)
    ids = torch.randint(0, vocab, (2, 512), generator=g)

    def stats():
        softmax_stats(logits, targets, TEMPS)

    def stats_big():
        old, temperature.BLOCK = temperature.BLOCK, temperature.BLOCK * 32
        try:
            softmax_stats(logits, targets, TEMPS)
        finally:
            temperature.BLOCK = old

    def forward():
        with torch.inference_mode():
            model(ids).logits.sum().item()

    return {"softmax_stats": stats, "softmax_stats_big_blocks": stats_big, "forward": forward}


def time_it(fn, threads: int) -> float:
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(fns: dict, repeats: int) -> dict:
    out = {}
    for name, fn in fns.items():
        time_it(fn, 2)  # warm-up (allocations, first-call costs)
        times: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(repeats):
            for n in (1, 2):
                times[n].append(time_it(fn, n))
                print(f"    {name} {n} thread(s): {times[n][-1]:.3f} s", flush=True)
        med = {n: statistics.median(v) for n, v in times.items()}
        out[name] = {"seconds_1_thread": med[1], "seconds_2_threads": med[2], "ratio_2_over_1": med[2] / med[1],
                     "times": {str(n): v for n, v in times.items()}}
        print(f"  {name:26s} 1 thread {med[1]:7.3f} s   2 threads {med[2]:7.3f} s   ratio {med[2] / med[1]:5.2f}",
              flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--vocab", type=int, default=49152)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hogs", type=int, default=os.cpu_count(), help="busy-loop processes for the loaded case")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` kills the hogs
    fns = workloads(args.rows, args.vocab)
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.machine(),
              "cpus": os.cpu_count(), "torch": torch.__version__, "rows": args.rows, "vocab": args.vocab,
              "temperatures": TEMPS, "block_elements": temperature.BLOCK, "repeats": args.repeats,
              "hogs": args.hogs, "load_before": os.getloadavg()}
    print("idle", flush=True)
    result["idle"] = measure(fns, args.repeats)
    result["load_after_idle"] = os.getloadavg()
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    try:
        time.sleep(1.0)
        print(f"loaded ({args.hogs} busy-loop processes)", flush=True)
        result["loaded"] = measure(fns, args.repeats)
        result["load_after_loaded"] = os.getloadavg()
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
