"""Data parallelism: token-balanced shards, and torchrun with 2 CPU processes (gloo) equal to 1 process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import corpus, write_config

from lm_eval_it.cli import main
from lm_eval_it.engine.distributed import assign

REPO = Path(__file__).resolve().parents[2]


def test_assign_balances_tokens_and_covers_every_batch():
    weights = [40, 40, 40, 40, 3, 3, 3, 3, 3, 3, 100]
    shards = assign(weights, 3)
    assert sorted(i for s in shards for i in s) == list(range(len(weights)))
    loads = sorted(sum(weights[i] for i in s) for s in shards)
    assert loads == [89, 89, 100]  # by tokens: a document count would give 4/4/3 items, loads far apart
    assert assign([5], 4) == [[0], [], [], []]


def docs_config(tmp, model_dir, data, name, eval_, output=None, model_extra=None):
    """A config file for the tiny model on ``data``; (its path, its run folder)."""
    path = write_config(tmp, [{"name": "tiny", "path": str(model_dir), **(model_extra or {})}], name=name,
                        datasets=[{"name": "docs", "path": str(data)}], eval={"device": "cpu", **eval_},
                        output={"plots": False, **(output or {})})
    return path, tmp / "results" / name


@pytest.fixture(scope="module")
def dist_config(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("dist")
    data = tmp / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": t[:1500]}) + "\n" for t in corpus()[:12]))

    def make(name, **model_extra):
        return docs_config(tmp, tiny_model_dir, data, name,
                            {"window": 32, "stride": 16, "batch_size": 3, "temperatures": [0.7]},
                            model_extra=model_extra)
    return make


def only_results(run_dir):
    (f,) = run_dir.glob("*/results.json")
    return json.loads(f.read_text())


def test_torchrun_two_processes_equal_one(dist_config):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one_cfg, one_dir = dist_config("one")
    subprocess.run([sys.executable, "-m", "lm_eval_it", "run", str(one_cfg), "--quiet"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    two_cfg, two_dir = dist_config("two")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lm_eval_it", "run", str(two_cfg), "--quiet"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1  # rank 0 reports; rank 1 writes and prints nothing
    one, two = only_results(one_dir), only_results(two_dir)
    assert two["provenance"]["world_size"] == 2 and one["provenance"]["world_size"] == 1
    (r1,), (r2,) = one["results"], two["results"]
    assert r2["per_document"] == r1["per_document"]          # to the last digit
    assert r2["metrics"] == r1["metrics"]
    assert r2["temperature"]["per_temperature"] == r1["temperature"]["per_temperature"]
    assert len(list(two_dir.iterdir())) == 1 and not list(two_dir.glob("*/checkpoint*"))


def test_device_map_auto_on_cpu(dist_config):
    ref_cfg, ref_dir = dist_config("nomap")
    cfg, run_dir = dist_config("map", device_map="auto")
    assert main(["run", str(ref_cfg), "--quiet"]) == 0
    assert main(["run", str(cfg), "--quiet"]) == 0
    ref, got = only_results(ref_dir), only_results(run_dir)
    assert got["models"][0]["device"] == "cpu"
    assert got["results"][0]["per_document"] == ref["results"][0]["per_document"]


def kill_all(marker: str) -> None:
    """SIGKILL every process whose command line contains ``marker``."""
    import signal

    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(proc_dir.name) != os.getpid():
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except OSError:
                pass


def test_torchrun_killed_then_resumed_equals_one_process(tmp_path, tiny_model_dir):
    import time

    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": t[:3000]}) + "\n" for t in corpus()[:30]))

    def config(name):
        return docs_config(tmp_path, tiny_model_dir, data, name, {"window": 48, "stride": 24, "batch_size": 1})

    env = dict(os.environ, OMP_NUM_THREADS="1")
    one_cfg, one_dir = config("one")
    subprocess.run([sys.executable, "-m", "lm_eval_it", "run", str(one_cfg), "--quiet"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    cfg, run_dir = config("killed")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lm_eval_it", "run", str(cfg), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while proc.poll() is None and time.time() < deadline:
        logs = list(run_dir.glob("*/checkpoint*.jsonl"))
        if len(logs) == 2 and all(f.read_text().count('"kind": "part"') + f.read_text().count('"kind": "doc"') >= 3 for f in logs):
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    kill_all(str(cfg))  # the launcher and every rank (torchrun starts ranks in their own sessions)
    proc.wait()
    time.sleep(0.5)
    assert not list(run_dir.glob("*/results.json"))
    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    one, two = only_results(one_dir), only_results(run_dir)
    assert two["resumed_documents"] >= 3
    assert two["results"][0]["per_document"] == one["results"][0]["per_document"]  # to the last digit
    assert two["results"][0]["metrics"] == one["results"][0]["metrics"]


def test_torchrun_keeps_documents_that_rank_1_finished_whole(tmp_path, tiny_model_dir):
    """Short documents fit one batch: rank 1 finishes them alone and must hand them to rank 0 (they were lost)."""
    data = tmp_path / "docs.jsonl"
    lengths = [60, 1500, 40, 300, 80, 900, 50, 120]
    data.write_text("".join(json.dumps({"text": t[: lengths[i % 8]]}) + "\n" for i, t in enumerate(corpus()[:16])))

    def config(name):
        return docs_config(tmp_path, tiny_model_dir, data, name,
                            {"window": 32, "stride": 16, "batch_size": 3, "temperatures": [0.7]},
                            output={"per_token": True})

    env = dict(os.environ, OMP_NUM_THREADS="1")
    one_cfg, one_dir = config("one")
    subprocess.run([sys.executable, "-m", "lm_eval_it", "run", str(one_cfg), "--quiet"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    two_cfg, two_dir = config("two")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "lm_eval_it", "run", str(two_cfg), "--quiet"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (r1,), (r2,) = only_results(one_dir)["results"], only_results(two_dir)["results"]
    assert r1["metrics"]["docs"] == 16
    assert r2["per_document"] == r1["per_document"]          # every document, to the last digit
    assert r2["metrics"] == r1["metrics"]
    assert r2["temperature"]["per_temperature"] == r1["temperature"]["per_temperature"]
    # per-token output: every rank writes the rows it scored (rank 1's were missing)
    import pyarrow.parquet as pq

    def tokens(run_dir):
        (folder,) = run_dir.glob("*/per_token-*")
        t = pq.read_table(sorted(folder.glob("*.parquet"))).to_pandas()
        return t.sort_values(["document", "position"]).reset_index(drop=True)

    t1, t2 = tokens(one_dir), tokens(two_dir)
    assert len(t1) == r1["metrics"]["tokens"] and r2["per_token"]["rows"] == len(t2)
    assert t2.equals(t1)
