"""Parts of documents as executor hooks: recorded per process under torchrun, snapshot in one process."""

import json

import pytest
from engine_fakes import executor, same

from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.partial import SNAPSHOT, part_hooks, resume_parts


def test_no_checkpoint_no_hooks():
    assert part_hooks(None, "m", "d", Context()) == {}


class Cut(Exception):
    pass


def test_one_process_snapshots_its_open_documents_and_resumes_identically(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"h": 1})
    hooks = part_hooks(ck, "m", "d", Context())
    assert set(hooks) == {"on_batch"} and hooks["on_batch"] == ck.watch.tick
    assert ck.watch.write() is False  # no executor followed yet: nothing to write
    batches = []

    def on_batch():  # the snapshot's tick, then a Ctrl-C after the third batch
        hooks["on_batch"]()
        batches.append(1)
        if len(batches) == 3:
            raise Cut

    ex = executor(3, on_batch=on_batch)
    done: dict = {}
    resume_parts(ex, ck, "m", "d", Context(), done)
    assert done == {} and ck.watch.ex is ex
    try:
        for r in ex.run():
            ck.record("m", "d", r)
    except Cut:
        assert ck.watch.write() is True  # what the interrupt handler does
    ck.close()
    snap = json.loads((tmp_path / SNAPSHOT).read_text())
    assert (snap["model"], snap["dataset"], sorted(snap["docs"])) == ("m", "d", ["3"])  # doc 3 is half scored

    again = Checkpoint(tmp_path)
    again.begin({"h": 1})
    resumed = executor(3, **part_hooks(again, "m", "d", Context()))
    done = again.done("m", "d")
    resume_parts(resumed, again, "m", "d", Context(), done)
    assert sorted(done) == [2] and sorted(resumed.acc.open) == [3] and again.watch.ex is resumed
    for r in resumed.run(set(done)):
        done[r.doc] = r
    whole = {r.doc: r for r in executor(3).run()}
    assert sorted(done) == sorted(whole)
    for d in whole:
        same(done[d], whole[d])


def test_under_torchrun_each_process_records_its_parts(tmp_path):
    ck = Checkpoint(tmp_path, rank=1)
    ctx = Context(rank=1, world=2)
    hooks = part_hooks(ck, "m", "d", ctx)
    assert set(hooks) == {"on_part"} and ck.watch is None
    ex = executor(3, **hooks)
    resume_parts(ex, ck, "m", "d", ctx, {})  # rank 1: nothing to fold in
    list(ex.run(shard=list(range(0, len(ex.batches), 2)), empty=False))
    recorded = sorted(d for d, _ in Checkpoint(tmp_path).parts("m", "d"))
    assert recorded and recorded == sorted(d for d, _ in ex.partial())


def test_resume_needs_the_hooks_of_the_same_model_and_dataset(tmp_path):
    ck = Checkpoint(tmp_path)
    ex = executor(3, **part_hooks(ck, "m", "other", Context()))
    with pytest.raises(ValueError, match="part_hooks"):
        resume_parts(ex, ck, "m", "d", Context(), {})
    with pytest.raises(ValueError, match="part_hooks"):  # under torchrun: no on_part, no parts recorded
        resume_parts(executor(3), Checkpoint(tmp_path, rank=1), "m", "d", Context(rank=1, world=2), {})
