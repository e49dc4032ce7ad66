"""The executor: batch order, results independent of the batch size, resume skipping, out-of-memory back-off."""

import logging

import numpy as np
import pytest
import torch
from engine_fakes import FakeScorer, Probe, V, executor, prepared, same, sequences

from lm_eval_it.engine.execute import plan_batches, score_sequences
from lm_eval_it.engine.windows import WindowPlan, plan_windows
from lm_eval_it.errors import UserError
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.memorisation.statistic import MinKProb
from lm_eval_it.stats.temperature.sweep import TemperatureStats


def all_stats():
    return [Probe(), TemperatureStats([0.5, 1.0, 2.0], V, search=False), ContextStats(12, 5), MinKProb(20.0)]


def results(ex, **kw) -> dict:
    return {r.doc: r for r in ex.run(**kw)}


def test_batches_are_windows_sorted_longest_first_stably():
    plan = WindowPlan.of([plan_windows(3, 4, 4), plan_windows(11, 4, 4), plan_windows(2, 4, 4)])
    assert plan.length.tolist() == [2, 4, 4, 4, 1]
    batches = plan_batches(plan, 2)
    assert [b.tolist() for b in batches] == [[1, 2], [3, 0], [4]]  # ties keep plan order
    assert [b.tolist() for b in plan_batches(plan, 0)] == [[1], [2], [3], [0], [4]]  # at least one a batch


def test_results_do_not_depend_on_the_batch_size_to_the_last_bit():
    # each window's rows are reduced in one chunk here (the scorer's row budget holds a whole batch), so only
    # the batch size changes: which windows share a forward pass, and in what order documents complete
    runs = [results(executor(b, FakeScorer(), all_stats())) for b in (1, 3, 7)]
    assert sorted(runs[0]) == list(range(7))
    for other in runs[1:]:
        assert sorted(other) == sorted(runs[0])
        for d in runs[0]:
            same(runs[0][d], other[d])


def test_token_nlls_are_in_text_order_and_sum_to_the_document_nll():
    """Brute force in float64: each target's NLL from the window that scores it, placed at its text position."""
    scorer = FakeScorer()
    ex = executor(3, scorer)
    seqs, plans = sequences()
    got = {r.doc: r for r in ex.run()}
    for d, (s, plan) in enumerate(zip(seqs, plans)):
        r = got[d]
        assert r.tokens == len(s) - 1 == len(r.token_nll)
        assert r.nll == float(np.sum(r.token_nll, dtype=np.float64))
        want = np.zeros(len(s) - 1)
        for w in plan:
            for p in range(w.score_from, w.length):
                cur, prev = s[w.start + p], s[w.start + p - 1] if p > 0 else V
                logits = (scorer.E[cur] + scorer.F[prev] + scorer.G[p % 5]).double()
                want[w.start + p] = -torch.log_softmax(logits, 0)[s[w.start + p + 1]].item()
        np.testing.assert_allclose(r.token_nll, want, rtol=1e-5, atol=1e-5)


def test_a_document_with_no_target_completes_at_once():
    seqs = [np.array([5], np.int32), np.array([1, 2, 3], np.int32)]
    out = score_sequences(FakeScorer(), seqs, [plan_windows(1, 4, 4), plan_windows(3, 4, 4)], 2, statistics=[Probe()])
    assert [r.doc for r in out] == [0, 1] and out[0].tokens == 0 and out[0].nll == 0.0
    assert out[0].extra == {} and out[1].tokens == 2


def test_done_documents_are_skipped_and_the_rest_is_identical():
    whole = results(executor(3))
    done = {1, 3, 5}
    scorer = FakeScorer()
    ex = executor(3, scorer)
    part = results(ex, done=done)
    assert sorted(part) == sorted(set(whole) - done)
    for d in part:
        same(part[d], whole[d])
    plan = ex.p.plan
    needed = [b for b in ex.batches if not all(int(d) in done for d in plan.doc[b])]
    assert len(scorer.batches) == len(needed) < len(ex.batches)  # batches of done documents only: not scored


def test_a_shard_scores_only_its_batches():
    scorer = FakeScorer()
    ex = executor(3, scorer)
    shard = [0, 2]
    list(ex.run(shard=shard, empty=False))
    assert scorer.batches == [len(ex.batches[0]), len(ex.batches[2])]


def test_out_of_memory_halves_the_batch_and_gives_the_same_numbers(caplog):
    whole = results(executor(4))
    scorer = FakeScorer(oom_once=True)
    with caplog.at_level(logging.WARNING):
        got = results(executor(4, scorer))
    assert "retrying with batch_size 2" in caplog.text
    assert scorer.batches[:2] == [2, 2] and max(scorer.batches) == 2  # halved from here on
    assert sorted(got) == sorted(whole)
    for d in whole:
        same(got[d], whole[d])


def test_out_of_memory_at_batch_size_one_is_a_user_error():
    class AlwaysOOM(FakeScorer):
        def chunks(self, *a):
            raise torch.OutOfMemoryError("fake")

    with pytest.raises(UserError, match="out of memory with batch_size 1"):
        list(executor(1, AlwaysOOM()).run())


def test_collaborators_are_constructor_arguments():
    sunk, ticks = [], []
    ex = executor(3, token_sink=lambda chunk, nll, rows, keep: sunk.append((len(nll), set(rows), keep.all())),
                  on_batch=lambda: ticks.append(1), stat_threads=1)
    list(ex.run())
    assert sum(n for n, _, _ in sunk) == int(ex.p.targets.sum())  # every target reaches the sink once
    assert all(names == {"probe"} and kept for _, names, kept in sunk)
    assert len(ticks) == len(ex.batches)
    assert ex.stat_threads == 1 and executor(3).token_sink is None


def test_on_part_hands_on_documents_this_process_scored_only_in_part():
    parts = []
    ex = executor(3, on_part=lambda d, part: parts.append(d))
    shard = list(range(0, len(ex.batches), 2))
    finished = {r.doc for r in ex.run(shard=shard, empty=False)}
    assert parts and not set(parts) & finished
    assert sorted(d for d, _ in ex.partial()) == sorted(parts)


def test_the_statistics_run_on_stat_threads():
    seen = []

    class Spy(Probe):
        def rows(self, chunk):
            seen.append(torch.get_num_threads())
            return super().rows(chunk)

    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    list(executor(3, stats=[Spy()], stat_threads=target).run())
    assert set(seen) == {target} and torch.get_num_threads() == before


def test_score_sequences_returns_documents_in_order():
    seqs, plans = sequences()
    out = score_sequences(FakeScorer(), seqs, plans, 3, statistics=[Probe()])
    assert [r.doc for r in out] == list(range(len(seqs)))
    by_ex = results(executor(3))
    for r in out:  # the same NLLs as an executor over the same plan (no byte table here: other sums)
        assert r.nll.hex() == by_ex[r.doc].nll.hex() and r.token_nll.tobytes() == by_ex[r.doc].token_nll.tobytes()
    assert prepared().plan.length.max() == 12
