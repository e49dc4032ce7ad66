"""Partly scored documents: a snapshot taken between any two batches resumes to identical numbers."""

import json

import numpy as np
import pytest
from test_reduction_bruteforce import FakeScorer, _setup

from lm_eval_it.engine.checkpoint import Checkpoint, decode_part, encode_part
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.partial import SNAPSHOT, count_open, open_parts, read_snapshot
from lm_eval_it.engine.prepare import from_sequences
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.memorisation.statistic import MinKProb
from lm_eval_it.stats.temperature.sweep import TemperatureStats


def executor(batch: int, budget: int, **hooks):
    seqs, plans, V = _setup()
    prep = from_sequences(seqs, plans, None, V)
    prep.byte_table = np.arange(V, dtype=np.int32) % 4 + 1
    stats = [TemperatureStats([0.5, 1.0, 2.0], V, search=False), ContextStats(12, 5), MinKProb(20.0)]
    return Executor(prep, FakeScorer(V, budget), stats, batch, keep_tokens=True, **hooks)


def same(a, b) -> None:
    assert a.doc == b.doc and a.nll.hex() == b.nll.hex() and a.tokens == b.tokens
    assert a.sums.tobytes() == b.sums.tobytes()
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts)
    assert all(a.extremes[k].tobytes() == b.extremes[k].tobytes() for k in a.extremes)
    assert {k: v.hex() for k, v in a.extra.items()} == {k: v.hex() for k, v in b.extra.items()}
    assert a.token_nll.tobytes() == b.token_nll.tobytes()


class Cut(Exception):
    pass


def stopped_after(batch: int, budget: int, cut: int):
    """An executor stopped (as Ctrl-C would) after ``cut`` scored batches, and the documents it finished."""
    seen, done = [], {}

    def tick():
        seen.append(1)
        if len(seen) == cut:
            raise Cut

    ex = executor(batch, budget, on_batch=tick)
    try:
        for r in ex.run():
            done[r.doc] = r
    except Cut:
        pass
    return ex, done


def interrupted_then_resumed(batch: int, budget: int, cut: int):
    """Score ``cut`` batches, snapshot through JSON, then resume in a fresh executor: every document's result."""
    ex, done = stopped_after(batch, budget, cut)
    parts = json.loads(json.dumps([(d, encode_part(p)) for d, p in ex.snapshot()]))
    fresh = executor(batch, budget)
    for r in fresh.restore([(d, decode_part(x)) for d, x in parts]):
        done[r.doc] = r
    for r in fresh.run(set(done)):
        assert r.doc not in done
        done[r.doc] = r
    return done, parts


@pytest.mark.parametrize("batch,budget", [(1, 1000), (3, 4), (5, 7)])
def test_resume_from_any_batch_boundary_is_identical(batch, budget):
    whole = {r.doc: r for r in executor(batch, budget).run()}
    n_batches = len(executor(batch, budget).batches)
    open_seen = 0
    for cut in range(1, n_batches):
        done, parts = interrupted_then_resumed(batch, budget, cut)
        open_seen += bool(parts)
        assert sorted(done) == sorted(whole)
        for d in whole:
            same(done[d], whole[d])
    assert open_seen > (n_batches - 1) / 2  # most cuts left a document open


def test_restored_windows_are_not_scored_again():
    ex, done = stopped_after(3, 4, len(executor(3, 4).batches) // 2)
    parts = ex.snapshot()
    covered = sum(int(p["covered"].sum()) for _, p in parts)
    finished = int(sum(ex.p.targets[d] for d in done))
    fresh = executor(3, 4)
    fresh.restore(parts)
    added = []
    real = fresh.acc.apply

    def apply(update):
        chunk, keep = update.chunk, update.keep
        bounds = list(chunk.segments) + [len(chunk.doc)]
        added.append(sum(bounds[j + 1] - bounds[j] for j in range(len(keep)) if keep[j]))
        real(update)

    fresh.acc.apply = apply
    assert {r.doc for r in fresh.run(set(done))} == set(range(len(ex.p.targets))) - set(done)
    assert covered > 0 and done and parts
    # each target is added exactly once: the restored ones not at all
    assert sum(added) == int(fresh.p.targets.sum()) - finished - covered


def test_snapshot_is_withheld_while_a_batch_is_half_added():
    ex = executor(3, 4)
    real = ex.acc.apply
    snaps = []

    def apply(*args):
        snaps.append(ex.snapshot())
        real(*args)

    ex.acc.apply = apply
    list(ex.run())
    assert snaps and all(s is None for s in snaps)
    assert ex.snapshot() == []


def test_old_part_entries_with_target_indices_still_decode(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"h": 1})
    cov = np.array([False, True, True, False, True])
    nll = np.array([0, 1.5, 2.5, 0, 4.5], np.float32)
    from lm_eval_it.engine.checkpoint import (
        _pack,  # the format of a part written before runs
    )

    ck._append({"kind": "part", "model": "m", "dataset": "d", "doc": 3, "rank": 1, "sums": ["1f"],
                "covered": _pack(np.flatnonzero(cov).astype(np.int32)), "size": 5, "nll": _pack(nll[cov]),
                "counts": {}, "extremes": {}})
    ck.record_part("m", "d", 4, {"sums": ["2"], "covered": cov, "nll": nll, "counts": {}, "extremes": {}})
    (d3, old), (d4, new) = ck.parts("m", "d")
    assert (d3, d4) == (3, 4)
    for p in (old, new):
        assert p["covered"].tolist() == cov.tolist() and p["nll"].tolist() == nll.tolist()


def test_unreadable_snapshot_is_ignored_and_its_documents_rescored(tmp_path, caplog):
    (tmp_path / SNAPSHOT).write_text(json.dumps({"format": 99, "docs": {"0": {}}}))
    assert read_snapshot(tmp_path) is None and count_open(tmp_path) == 0
    assert open_parts(tmp_path, "m", "d") == []
    assert "cannot read" in caplog.text
