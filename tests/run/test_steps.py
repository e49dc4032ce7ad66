"""The runner's named pieces in isolation: Resume, DataParallel (with fake ranks) and Progress."""

from types import SimpleNamespace as NS

import numpy as np

from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.windows import WindowPlan
from lm_eval_it.run import steps
from lm_eval_it.run.steps import DataParallel, Progress, Resume


def test_progress_counts_only_what_this_process_scored_and_times_the_scoring():
    p = Progress(total=100, documents=3, finished=1, desc="m · d", ctx=Context(), show=False)
    p.update(40, 1, True)
    p.update(60, 2, False)  # retired from a resume: no tokens scored here
    p.close()
    assert (p.scored, p.finished) == (40, 4) and p.seconds > 0


def test_progress_bar_shows_on_rank_0_and_counts_every_rank(monkeypatch):
    import io

    from tqdm import tqdm

    monkeypatch.setattr(steps, "tqdm", lambda **kw: tqdm(file=io.StringIO(), **kw))
    p = Progress(total=100, documents=3, finished=0, desc="m · d", ctx=Context(rank=0, world=4), show=True)
    p.update(10, 0, True)
    assert p.bar.n == 40 and p.scored == 10 and p.bar.desc.endswith("≈ 4 ranks")
    p.close()
    assert Progress(total=1, documents=1, finished=0, desc="x", ctx=Context(rank=1, world=4), show=True).bar.disable


def test_resume_without_a_checkpoint_starts_empty_and_records_nothing():
    r = Resume(None, "m", "d", Context())
    assert r.start(ex=None) == {}
    r.record("anything")  # no checkpoint: a no-op


class FakeCheckpoint:
    def __init__(self):
        self.recorded, self.read = [], 0

    def done(self, model, dataset):
        self.read += 1
        return {0: "r0"}

    def record(self, model, dataset, result):
        self.recorded.append((model, dataset, result))


def test_resume_reads_the_finished_documents_on_rank_0_only(monkeypatch):
    calls = []
    monkeypatch.setattr(steps, "resume_parts", lambda ex, ck, m, d, ctx, done: calls.append((m, d, dict(done))))
    ck = FakeCheckpoint()
    assert Resume(ck, "m", "d", Context()).start(ex="ex") == {0: "r0"}
    assert Resume(ck, "m", "d", Context(rank=1, world=2)).start(ex="ex") == {}
    assert ck.read == 1 and calls == [("m", "d", {0: "r0"}), ("m", "d", {})]
    Resume(ck, "m", "d", Context()).record("res")
    assert ck.recorded == [("m", "d", "res")]


def plan_and_batches():
    # columns: doc, ..., ..., tokens (col 3); four one-window batches of documents 0, 0, 1, 2
    plan = np.array([[0, 0, 0, 8, 0], [0, 0, 0, 4, 0], [1, 0, 0, 6, 0], [2, 0, 0, 2, 0]])
    return NS(plan=WindowPlan.from_block(plan.T)), NS(batches=[np.array([0]), np.array([1]), np.array([2]), np.array([3])])


def test_one_process_scores_every_batch_and_merges_nothing():
    prepared, ex = plan_and_batches()
    dp = DataParallel(Context())
    assert dp.shard(ex, prepared, {5: "r"}) == (None, {5: "r"})
    assert dp.merge(ex, red=None, scored=7, per_token={"rows": 1}) == (7, {"rows": 1})


def test_ranks_skip_finished_documents_and_split_the_rest_by_weight(monkeypatch):
    prepared, ex = plan_and_batches()
    monkeypatch.setattr(steps, "broadcast", lambda ctx, obj: [1])  # rank 0 read: document 1 is finished
    shard0, done0 = DataParallel(Context(rank=0, world=2)).shard(ex, prepared, {1: "r1"})
    shard1, done1 = DataParallel(Context(rank=1, world=2)).shard(ex, prepared, {})
    assert shard0 == [0] and shard1 == [1, 3]  # weights 8 | 4 + 2; batch 2 (document 1) is done
    assert done0 == {1: "r1"} and done1 == {1: None}


def test_rank_0_merges_the_other_ranks_work(monkeypatch):
    gathered = iter([[[], [(4, "part")]], [10, 5], [None, "wholes1"], [{"folder": "f", "shards": 1, "rows": 10},
                                                                       {"folder": "f", "shards": 2, "rows": 5}]])
    monkeypatch.setattr(steps, "gather", lambda ctx, obj: next(gathered))
    merged, added = [], []
    ex = NS(partial=lambda: [], merge_part=lambda d, part: f"doc{d}")
    red = NS(export=lambda: None, merge=merged.append, add=added.append)
    out = DataParallel(Context(rank=0, world=2)).merge(ex, red, 10, {"folder": "f", "shards": 1, "rows": 10})
    assert out == (15, {"folder": "f", "shards": 3, "rows": 15})
    assert merged == ["wholes1"] and added == ["doc4"]


def test_other_ranks_hand_their_work_over_and_get_none(monkeypatch):
    sent = []
    monkeypatch.setattr(steps, "gather", lambda ctx, obj: sent.append(obj))
    ex = NS(partial=lambda: ["p"])
    red = NS(export=lambda: "mine")
    assert DataParallel(Context(rank=1, world=2)).merge(ex, red, 3, None) is None
    assert sent == [["p"], 3, "mine", None]
