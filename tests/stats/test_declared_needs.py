"""Every statistic that reads full logits says so (``needs``), so a target-log-probs-only backend is refused
before anything loads, in one line, exit 2 — not halfway through a run with an AttributeError on ``None``."""

import numpy as np
import pytest
import torch
from conftest import write_config

from lm_eval_it.backends.base import Capability
from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.cli import main
from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.errors import UserError
from lm_eval_it.stats import registry
from lm_eval_it.stats.base import Chunk, Setup, check_needs

VOCAB = 50
EVERYTHING = EvalConfig(temperatures=[0.5, 2.0], target_rank=True)


def chunk(logits):
    g = torch.Generator().manual_seed(0)
    full = torch.randn(6, VOCAB, generator=g)
    targets = torch.randint(0, VOCAB, (6,), generator=g)
    nll = torch.logsumexp(full, 1) - full.gather(1, targets.view(-1, 1)).squeeze(1)
    return Chunk(full if logits else None, targets, nll, np.zeros(6, int), np.arange(6), np.arange(1, 7),
                 np.array([0]), np.ones(6, int), full.clone() if logits else None)


def test_each_statistic_that_cannot_run_without_logits_declares_full_logits():
    plugins = registry.build(Setup(EVERYTHING, VOCAB, 32, 16, True, "ref"))
    assert {"temperature", "kl", "target_rank"} <= {p.name for p in plugins}
    for p in plugins:
        if p.statistic is None:
            continue
        p.statistic.rows(chunk(logits=True))  # runs with full logits
        try:
            p.statistic.rows(chunk(logits=False))  # what a TargetLogprobScorer hands the engine
        except (AttributeError, TypeError):
            assert Capability.FULL_LOGITS in p.needs, f"{p.name} reads logits but declares needs={set(p.needs)}"


def test_a_sweep_or_kl_on_a_target_logprobs_backend_is_refused_naming_both():
    plugins = registry.build(Setup(EvalConfig(temperatures=[0.5]), VOCAB, 32, 16, True, "ref"))
    with pytest.raises(UserError, match=r"statistics 'kl', 'temperature' need full_logits, which backend 'server'"):
        check_needs(plugins, "server", {Capability.TARGET_LOGPROBS})


def test_the_cli_refuses_a_sweep_before_any_model_loads(tmp_path, tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(HFBackend, "capabilities", frozenset({Capability.TARGET_LOGPROBS}))

    def no_load(*a, **k):
        raise AssertionError("a model loaded before the refusal")

    monkeypatch.setattr(HFBackend, "load", classmethod(no_load))
    cfg = write_config(tmp_path, {"m": tiny_model_dir}, ["some text to score"],
                       eval={"window": 16, "device": "cpu", "temperatures": [0.5]}, output={"plots": False})
    assert main(["run", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'temperature'" in err and "full_logits" in err and "'hf'" in err
    assert not (tmp_path / "results" / "t").exists() or not list((tmp_path / "results" / "t").rglob("results.json"))
