"""eval.threads: the forward runs on N intra-op threads, the per-token statistics on one (README, Threads)."""

import torch

from lm_eval_it.config import parse_config
from lm_eval_it.engine.execute import Executor
from lm_eval_it.run import runner
from lm_eval_it.stats.temperature.sweep import TemperatureStats


def test_explicit_threads_set_the_forward_and_keep_the_statistics_on_one(tiny_model_dir, tmp_path, monkeypatch):
    seen = {"forward": set(), "statistics": set()}
    rows, score = TemperatureStats.rows, Executor._score

    def spy_rows(self, chunk):
        seen["statistics"].add(torch.get_num_threads())
        return rows(self, chunk)

    def spy_score(self, batch, done):
        seen["forward"].add(torch.get_num_threads())
        return score(self, batch, done)

    monkeypatch.setattr(TemperatureStats, "rows", spy_rows)
    monkeypatch.setattr(Executor, "_score", spy_score)
    data = tmp_path / "d.txt"
    data.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    raw = {"models": [{"name": "tiny", "path": str(tiny_model_dir)}], "datasets": [{"name": "d", "path": str(data)}],
           "eval": {"window": 64, "stride": 64, "batch_size": 2, "device": "cpu", "threads": 2,
                    "temperatures": [0.5, 1.0]},
           "output": {"dir": str(tmp_path / "out"), "run_name": "t", "plots": False}}
    before = torch.get_num_threads()
    try:
        runner.run(parse_config(raw), raw, show_progress=False)
    finally:
        torch.set_num_threads(before)
    assert seen == {"forward": {2}, "statistics": {1}}
