"""Killed runs resume to identical numbers; changed inputs are refused; runs are deterministic."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import corpus, write_config

from lm_eval_it.cli import main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def long_config(tmp_path_factory, tiny_model_dir):
    """40 documents, small windows, batch size 1: long enough to be killed part-way."""
    tmp = tmp_path_factory.mktemp("resume")
    data = tmp / "docs.jsonl"
    texts = [t[:3000] for t in corpus()[:40]]
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))

    def make(run_name: str, **eval_):
        path = write_config(tmp, {"tiny": tiny_model_dir}, name=run_name, datasets=[{"name": "docs", "path": str(data)}],
                            eval={"window": 48, "stride": 24, "batch_size": 1, "device": "cpu",
                                  "temperatures": [0.5, 2.0], **eval_}, output={"plots": False})
        return path, tmp / "results" / run_name
    return make


def results_of(run_dir: Path) -> dict:
    (f,) = run_dir.glob("*/results.json")
    return json.loads(f.read_text())


def numbers(res: dict) -> list:
    (row,) = res["results"]
    return [row["per_document"], row["metrics"], row["intervals"],
            {k: v for k, v in row["temperature"].items()}]


def launch(cfg: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    # a process started in the background inherits SIGINT ignored; give the child the default back
    return subprocess.Popen([sys.executable, "-m", "lm_eval_it", "run", str(cfg), "--quiet"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def checkpointed(run_dir: Path) -> int:
    return sum(f.read_text().count('"kind": "doc"') for f in run_dir.glob("*/checkpoint.jsonl"))


def test_sigkill_at_random_points_then_resume_is_identical(long_config):
    clean_cfg, clean_dir = long_config("clean")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "lm_eval_it", "run", str(clean_cfg), "--quiet"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    clean = results_of(clean_dir)

    cfg, run_dir = long_config("killed")
    rng = random.Random(7)
    points = sorted(rng.sample(range(1, 38), 5))
    kills = 0
    for point in points:
        proc = launch(cfg)
        deadline = time.time() + 120
        while proc.poll() is None and checkpointed(run_dir) < point and time.time() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        assert not list(run_dir.glob("*/results.json")), "a killed run left a results file"
    assert kills >= 4  # at least four of the five kill points landed while scoring
    proc = launch(cfg)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err
    resumed = results_of(run_dir)
    assert resumed["complete"] is True and resumed["resumed_documents"] > 0
    assert numbers(resumed) == numbers(clean)  # to the last digit
    assert not list(run_dir.glob("*/checkpoint*"))  # cleaned up once complete


def test_ctrl_c_leaves_a_resumable_checkpoint(long_config):
    cfg, run_dir = long_config("ctrlc")
    proc = launch(cfg)
    while proc.poll() is None and checkpointed(run_dir) < 3:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "documents are checkpointed in" in err and "--resume" in err and "Traceback" not in err
    folder = err.split("checkpointed in ")[1].split(";")[0]
    assert main(["run", str(cfg), "--quiet", "--resume", folder]) == 0
    assert results_of(run_dir)["complete"] is True


def test_resume_with_changed_inputs_is_refused(long_config, capsys):
    cfg, run_dir = long_config("changed")
    proc = launch(cfg)
    while proc.poll() is None and checkpointed(run_dir) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (folder,) = run_dir.iterdir()
    assert main(["run", str(cfg), "--quiet", "--resume", str(folder), "eval.stride=12"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "config.eval.stride (was 24, now 12)" in err
    # the same command without --resume does not touch it: a different config starts a new run
    assert main(["run", str(cfg), "--quiet", "eval.stride=12", "datasets.0.limit=2"]) == 0
    assert len(list(run_dir.iterdir())) == 2 and (folder / "checkpoint.jsonl").is_file()


def test_same_config_same_numbers(long_config):
    cfg, run_dir = long_config("twice", temperatures=[])
    assert main(["run", str(cfg), "--quiet", "datasets.0.limit=5"]) == 0
    assert main(["run", str(cfg), "--quiet", "datasets.0.limit=5"]) == 0
    a, b = (json.loads(f.read_text()) for f in sorted(run_dir.glob("*/results.json")))
    assert a["results"][0]["per_document"] == b["results"][0]["per_document"]
    assert a["results"][0]["metrics"] == b["results"][0]["metrics"]


# A child that prints "batch" before each forward and then waits a moment, so a signal sent on reading the
# line lands inside a forward, part-way through a document. SNAPSHOT_SECONDS is the periodic snapshot's period.
SLOW_CHILD = """
import sys, time
from lm_eval_it.engine import partial
from lm_eval_it.backends.hf import scorer as scoring
partial.SNAPSHOT_SECONDS = float(sys.argv[1])
real = scoring.Scorer.chunks
def chunks(self, *args):
    print("batch", flush=True)
    time.sleep(0.2)
    return real(self, *args)
scoring.Scorer.chunks = chunks
from lm_eval_it.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def spanning_config(tmp_path_factory, tiny_model_dir):
    """4 documents of about 700 tokens, 24 windows each, 4 windows a batch: each document spans many batches."""
    tmp = tmp_path_factory.mktemp("partial")
    data = tmp / "docs.jsonl"
    data.write_text("".join(json.dumps({"text": t[:1500]}) + "\n" for t in corpus()[40:44]))

    def make(run_name: str):
        path = write_config(tmp, {"tiny": tiny_model_dir}, name=run_name, datasets=[{"name": "docs", "path": str(data)}],
                            eval={"window": 64, "stride": 32, "batch_size": 4, "device": "cpu",
                                  "temperatures": [0.5, 2.0]}, output={"plots": False})
        return path, tmp / "results" / run_name
    return make


def slow_child(cfg: Path, snapshot_seconds: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", SLOW_CHILD, str(snapshot_seconds), "run", str(cfg), "--quiet"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def signal_after(proc: subprocess.Popen, batches: int, sig: int) -> str:
    """Send ``sig`` once the child has begun its ``batches``-th forward; its stderr."""
    for _ in range(batches):
        assert proc.stdout.readline() == "batch\n", proc.stderr.read()
    proc.send_signal(sig)
    return proc.communicate(timeout=60)[1]


def open_docs(run_dir: Path) -> dict:
    (snap,) = run_dir.glob("*/checkpoint.open.json")
    return json.loads(snap.read_text())["docs"]


def covered(entry: dict) -> int:
    return sum(b - a for a, b in zip(entry["runs"][::2], entry["runs"][1::2]))


def clean_numbers(spanning_config) -> list:
    cfg, run_dir = spanning_config("clean")
    if not list(run_dir.glob("*/results.json")):
        assert main(["run", str(cfg), "--quiet"]) == 0
    return numbers(results_of(run_dir))


def test_ctrl_c_mid_document_keeps_the_scored_part_and_resumes_identically(spanning_config):
    cfg, run_dir = spanning_config("ctrlc-mid")
    proc = slow_child(cfg, 3600)  # no periodic snapshot: only the one taken on Ctrl-C
    err = signal_after(proc, 6, signal.SIGINT)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert checkpointed(run_dir) == 0  # no document was finished ...
    docs = open_docs(run_dir)
    # ... but five batches are kept: 20 windows of document 0, the first scoring 64 targets, the others 32
    assert list(docs) == ["0"] and covered(docs["0"]) == 64 + 19 * 32
    assert "interrupted: 0 finished and 1 partly scored documents are checkpointed in" in err, err
    folder = err.split("checkpointed in ")[1].split(";")[0]
    assert "resume with: " in err and "--resume" in err
    assert main(["run", str(cfg), "--quiet", "--resume", folder]) == 0
    resumed = results_of(run_dir)
    row = resumed["results"][0]
    assert row["timing"]["tokens_scored_here"] < row["metrics"]["tokens"]  # the kept part was not scored again
    assert numbers(resumed) == clean_numbers(spanning_config)  # to the last digit
    assert not list(run_dir.glob("*/checkpoint*"))


def test_sigkill_mid_document_resumes_from_the_periodic_snapshot(spanning_config):
    cfg, run_dir = spanning_config("killed-mid")
    for batches in (7, 9):  # killed twice: the second run resumes the first's snapshot, then is killed too
        proc = slow_child(cfg, 0)  # a snapshot after every batch
        signal_after(proc, batches, signal.SIGKILL)
        assert proc.returncode == -signal.SIGKILL
        assert open_docs(run_dir) and not list(run_dir.glob("*/results.json"))
    assert main(["run", str(cfg), "--quiet"]) == 0  # the same command resumes
    resumed = results_of(run_dir)
    assert resumed["results"][0]["timing"]["tokens_scored_here"] < resumed["results"][0]["metrics"]["tokens"]
    assert numbers(resumed) == clean_numbers(spanning_config)


def test_ctrl_c_before_any_token_is_scored_leaves_no_folder(spanning_config, monkeypatch, capsys):
    from lm_eval_it.run import runner

    def interrupted_load(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "load_model", interrupted_load)
    cfg, run_dir = spanning_config("ctrlc-early")
    assert main(["run", str(cfg), "--quiet"]) == 130
    assert not run_dir.exists()
    err = capsys.readouterr().err
    assert "interrupted before any token was scored; nothing was written" in err and "resume" not in err
