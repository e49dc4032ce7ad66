"""Data-parallel speed-up on this machine: 2 ranks × 1 thread against 1 rank × 2 threads.

    python benchmarks/scaling.py --config configs/quickstart.yaml --out scaling.json

Both runs score the same config (temperature sweep off); the figure is the ratio
of the scoring wall time (results.json timing) and of the whole command.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], threads: int, name: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--quiet", "eval.temperatures=[]", f"output.run_name={name}", "output.plots=false"],
                   cwd=REPO, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    (f,) = sorted((REPO / "results" / name).glob("*/results.json"))[-1:]
    res = json.loads(f.read_text())
    return {"wall_s": wall, "scoring_s": sum(r["timing"]["seconds"] for r in res["results"]),
            "tokens": sum(r["metrics"]["tokens"] for r in res["results"]),
            "per_document": [d["nll"] for r in res["results"] for d in r["per_document"]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--out")
    args = ap.parse_args()
    one = timed([sys.executable, "-m", "lm_eval_it", "run", args.config], 2, "scaling_1x2")
    two = timed([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                 "-m", "lm_eval_it", "run", args.config], 1, "scaling_2x1")
    result = {"one_rank_two_threads": {k: v for k, v in one.items() if k != "per_document"},
              "two_ranks_one_thread": {k: v for k, v in two.items() if k != "per_document"},
              "scoring_speedup": one["scoring_s"] / two["scoring_s"], "wall_speedup": one["wall_s"] / two["wall_s"],
              "max_rel_diff": max(abs(a - b) / abs(a) for a, b in zip(one["per_document"], two["per_document"]))}
    print(f"{one['tokens']} tokens: scoring 1×2 threads {one['scoring_s']:.1f}s, 2 ranks×1 thread "
          f"{two['scoring_s']:.1f}s → speed-up {result['scoring_speedup']:.2f}× (whole command "
          f"{result['wall_speedup']:.2f}×); max per-document difference {result['max_rel_diff']:.1e}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
