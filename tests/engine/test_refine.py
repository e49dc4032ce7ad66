"""Refinement passes: each scores every window once more and sums NLL and its β-derivatives exactly."""

import numpy as np
import pytest
import torch
from engine_fakes import FakeScorer, V, executor, sequences

from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.refine import SearchStats, search_pass


def brute_force(scorer: FakeScorer, temperatures):
    """float64 reference: NLL, dNLL/dβ and d²NLL/dβ² of every target from its window's logits, summed."""
    out = np.zeros((3, len(temperatures)))
    for s, plan in zip(*sequences()):
        for w in plan:
            for p in range(w.score_from, w.length):
                cur, prev = s[w.start + p], s[w.start + p - 1] if p > 0 else V
                z = (scorer.E[cur] + scorer.F[prev] + scorer.G[p % 5]).float().double()
                y = int(s[w.start + p + 1])
                for i, t in enumerate(temperatures):
                    b = 1.0 / t
                    logp = torch.log_softmax(b * z, 0)
                    q = logp.exp()
                    mean = float((q * z).sum())
                    out[0, i] += -float(logp[y])
                    out[1, i] += mean - float(z[y])  # d/dβ of log Z(β) - β z_y
                    out[2, i] += float((q * z * z).sum()) - mean * mean
    return out


def test_a_search_pass_sums_the_float64_reference():
    scorer = FakeScorer()
    ex = executor(3, scorer, stat_threads=1)
    temps = [0.8, 1.0, 1.3]
    got = search_pass(ex, temps, Context())
    want = brute_force(scorer, temps)
    assert [t for t, *_ in got] == temps
    for i, (_, nll, d1, d2) in enumerate(got):
        assert nll == pytest.approx(want[0, i], rel=1e-10)
        assert d1 == pytest.approx(want[1, i], rel=1e-8, abs=1e-8)
        assert d2 == pytest.approx(want[2, i], rel=1e-8)


def test_a_search_pass_does_not_depend_on_the_batch_size():
    runs = [search_pass(executor(b), [0.7, 1.4], Context()) for b in (1, 4)]
    assert [[x.hex() for x in row[1:]] for row in runs[0]] == [[x.hex() for x in row[1:]] for row in runs[1]]


def test_search_stats_declare_three_sums_per_temperature():
    fields = SearchStats([0.5, 1.0]).fields()
    assert [(f.name, f.shape) for f in fields] == [("nll", (2,)), ("d1", (2,)), ("d2", (2,))]
