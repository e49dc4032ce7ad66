"""The checkpoint records the resolved device and batch size and replays them; a changed model or tokenizer is refused."""

import json

import pytest

from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.errors import UserError


def test_checkpoint_records_resolved_device_and_batch_size_and_replays_it(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"config": {"eval": {"device": "auto", "batch_size": "auto"}}, "device": "cpu"})
    assert ck.batch_size("m", "d", 7) == 7
    assert Checkpoint(tmp_path).batch_size("m", "d", 3) == 7  # a resume on other hardware replays 7
    lines = [json.loads(x) for x in (tmp_path / "checkpoint.jsonl").read_text().splitlines()]
    assert lines[0]["header"]["device"] == "cpu" and lines[1] == {"kind": "plan", "model": "m", "dataset": "d",
                                                                   "batch_size": 7}


def test_checkpoint_refuses_a_changed_tokenizer(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"x": 1})
    ck.model("m", "weights-a", "tok-a")
    again = Checkpoint(tmp_path)
    again.model("m", "weights-a", "tok-a")
    with pytest.raises(UserError, match="model 'm' tokenizer changed"):
        Checkpoint(tmp_path).model("m", "weights-a", "tok-b")
    with pytest.raises(UserError, match="model 'm' weights changed"):
        Checkpoint(tmp_path).model("m", "weights-b", "tok-a")
