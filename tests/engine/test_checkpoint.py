"""Checkpoints: finished documents round-trip exactly; a resume with changed inputs is refused."""

import json

import numpy as np
import pytest
from engine_fakes import FakeScorer, Probe, V, executor

from lm_eval_it.engine.checkpoint import (
    Checkpoint,
    decode_result,
    encode_result,
    run_header,
)
from lm_eval_it.errors import UserError
from lm_eval_it.stats.temperature.sweep import TemperatureStats

HEADER = run_header({"eval": {"window": 12}, "output": {"dir": "x"}}, {"d": "sha-d"}, {"torch": "2", "other": "1"},
                    device="cpu")


def results():
    ex = executor(3, FakeScorer(), [Probe(), TemperatureStats([0.5, 2.0], V, search=False)])
    return sorted(ex.run(), key=lambda r: r.doc)


def same_result(a, b):
    assert a.doc == b.doc and a.nll.hex() == b.nll.hex() and a.tokens == b.tokens
    assert a.sums.tobytes() == b.sums.tobytes() and a.sums.dtype == b.sums.dtype
    assert {k: v.tolist() for k, v in a.counts.items()} == {k: v.tolist() for k, v in b.counts.items()}
    assert {k: v.tobytes() for k, v in a.extremes.items()} == {k: v.tobytes() for k, v in b.extremes.items()}
    assert {k: float(v).hex() for k, v in a.extra.items()} == {k: float(v).hex() for k, v in b.extra.items()}


def test_record_done_and_count_round_trip_every_bit(tmp_path):
    rs = results()
    ck = Checkpoint(tmp_path)
    ck.begin(HEADER)
    for r in rs:
        ck.record("m", "d", r)
    ck.record("m", "other", rs[0])
    ck.close()
    again = Checkpoint(tmp_path)
    again.begin(HEADER)  # the same inputs: a resume
    done = again.done("m", "d")
    assert sorted(done) == [r.doc for r in rs] and again.count() == len(rs) + 1
    for r in rs:
        same_result(done[r.doc], r)
    assert list(again.done("m", "other")) == [0] and again.done("x", "d") == {}


def test_encoded_results_are_json_and_exact():
    for r in results():
        same_result(decode_result(r.doc, json.loads(json.dumps(encode_result(r)))), r)


def test_a_changed_header_is_refused_naming_what_changed(tmp_path):
    Checkpoint(tmp_path).begin(HEADER)
    changed = run_header({"eval": {"window": 16}, "output": {"dir": "elsewhere"}}, {"d": "sha-d"},
                         {"torch": "2"}, device="cpu")
    with pytest.raises(UserError, match=r"cannot resume .*config.eval.window \(was 12, now 16\)"):
        Checkpoint(tmp_path).begin(changed)
    only_output = run_header({"eval": {"window": 12}, "output": {"dir": "y"}}, {"d": "sha-d"}, {"torch": "2"},
                             device="cpu")
    Checkpoint(tmp_path).begin(only_output)  # the output section and unlisted versions do not count


def test_changed_model_weights_are_refused(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin(HEADER)
    ck.model("m", "aaaa", "tok1")
    Checkpoint(tmp_path).model("m", "aaaa", "tok1")
    with pytest.raises(UserError, match="model 'm' weights changed"):
        Checkpoint(tmp_path).model("m", "bbbb", "tok1")
    with pytest.raises(UserError, match="model 'm' tokenizer changed"):
        Checkpoint(tmp_path).model("m", "aaaa", "tok2")


def test_the_first_batch_size_is_replayed(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin(HEADER)
    assert ck.batch_size("m", "d", 8) == 8
    assert Checkpoint(tmp_path).batch_size("m", "d", 32) == 8 and ck.batch_size("m", "e", 4) == 4


def test_a_torn_last_line_keeps_everything_before_it(tmp_path):
    rs = results()
    ck = Checkpoint(tmp_path)
    ck.begin(HEADER)
    ck.record("m", "d", rs[1])
    ck.close()
    with open(ck.log, "a") as fh:
        fh.write('{"kind": "doc", "mod')  # a crash mid-write
    assert list(Checkpoint(tmp_path).done("m", "d")) == [1]


def test_parts_of_every_rank_are_read_and_remove_clears_them(tmp_path):
    cov = np.array([True, False, True])
    part = {"sums": ["1", "0"], "covered": cov, "nll": np.array([1.5, 0, 2.5], np.float32), "counts": {},
            "extremes": {}}
    ck0, ck1 = Checkpoint(tmp_path), Checkpoint(tmp_path, rank=1)
    ck0.begin(HEADER)
    ck1.record_part("m", "d", 4, part)
    ((d, got),) = ck0.parts("m", "d")
    assert d == 4 and got["covered"].tolist() == cov.tolist() and got["nll"].tolist() == [1.5, 0, 2.5]
    ck0.remove()
    ck1.remove()
    assert list(tmp_path.glob("checkpoint*")) == []
