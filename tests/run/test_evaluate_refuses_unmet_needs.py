"""``evaluate()`` refuses, like the CLI and before the model loads, a statistic whose need the backend cannot meet
(one line naming both), on each of its paths: a path with ``texts=``, a path with ``dataset=``, a live model."""

import pytest

from lm_eval_it.backends import registry

import lm_eval_it.api as api
from lm_eval_it.backends.base import Capability
from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.errors import UserError


@pytest.fixture
def logprobs_only(monkeypatch):
    monkeypatch.setattr(HFBackend, "capabilities", frozenset({Capability.TARGET_LOGPROBS}))

    def no_load(*a, **k):
        raise AssertionError("a model loaded before the refusal")

    monkeypatch.setattr(registry, "load_model", no_load)
    monkeypatch.setattr(HFBackend, "load", classmethod(no_load))


@pytest.mark.parametrize("source", ["texts", "dataset"])
def test_a_path_model_is_refused_before_it_loads(logprobs_only, tiny_model_dir, tmp_path, source):
    (tmp_path / "d.txt").write_text("a small document to score\n")
    where = {"texts": ["a small document to score"]} if source == "texts" else {"dataset": str(tmp_path / "d.txt")}
    with pytest.raises(UserError, match=r"statistic 'target_rank' needs full_logits, which backend 'hf' does not"):
        api.evaluate(str(tiny_model_dir), window=16, device="cpu", target_rank=True, **where)


def test_a_live_model_is_refused_too(logprobs_only, tiny):
    model, tok = tiny
    with pytest.raises(UserError, match=r"statistic 'target_rank' needs full_logits"):
        api.evaluate(model, tok, texts=["a small document to score"], window=16, device="cpu", target_rank=True)
