"""Executor + Reduction: per-document sums equal brute-force float64 per-token sums for any batch and row budget;
totals are bit-identical for the same batches in any order."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lm_eval_it.backends.logits import token_nll
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.prepare import from_sequences
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.stats.base import Chunk
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.temperature.sweep import TemperatureStats

pytestmark = pytest.mark.float64_reference


class FakeScorer:
    """Deterministic logits that depend only on (current token, previous token, input column): batch-free."""

    device = "cpu"

    def __init__(self, vocab: int, budget_rows: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.vocab = vocab
        self.rows = budget_rows
        self.E = torch.randn(vocab, vocab, generator=g) * 3
        self.F = torch.randn(vocab + 1, vocab, generator=g)
        self.G = torch.randn(5, vocab, generator=g) * 0.5

    def logits_at(self, cur, prev, col):
        return (self.E[cur] + self.F[prev] + self.G[col % 5]).float()

    def chunks(self, ids, mask, rows, cols, targets):
        cur = ids[rows, cols]
        prev = torch.where(cols > 0, ids[rows, (cols - 1).clamp_min(0)], torch.full_like(cols, self.vocab))
        logits = self.logits_at(cur, prev, cols)
        for i in range(0, len(targets), self.rows):
            lg = logits[i : i + self.rows]
            yield i, min(i + self.rows, len(targets)), lg, None, token_nll(lg, targets[i : i + self.rows])


def _setup(seed=0, V=37):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, V, int(n)).astype(np.int32) for n in (2, 9, 30, 61, 5, 44, 17)]
    plans = [plan_windows(len(s), 12, 5) for s in seqs]
    return seqs, plans, V


def _run(seqs, plans, V, batch, budget_rows, stats, shard_order=None):
    sc = FakeScorer(V, budget_rows)
    prep = from_sequences(seqs, plans, None, V)
    prep.byte_table = np.arange(V, dtype=np.int32) % 4 + 1
    ex = Executor(prep, sc, stats, batch, keep_tokens=True)
    shard = None if shard_order is None else shard_order(len(ex.batches))
    red = Reduction(ex.layout, prep)
    docs = {}
    for r in ex.run(shard=shard):
        red.add(r)
        docs[r.doc] = r
    return ex, red, docs, sc


def _brute_rows(seqs, plans, V, sc, stat):
    """Per document: every scored target's per-row values, computed one window at a time, in float64."""
    out = {}
    for d, (s, plan) in enumerate(zip(seqs, plans)):
        rows = []
        for w in plan:
            for p in range(w.score_from, w.length):
                cur = int(s[w.start + p]); prev = int(s[w.start + p - 1]) if p > 0 else V
                lg = sc.logits_at(torch.tensor([cur]), torch.tensor([prev]), torch.tensor([p]))
                tgt = torch.tensor([int(s[w.start + p + 1])])
                ch = Chunk(lg, tgt, token_nll(lg, tgt), np.array([d]), np.array([w.start + p]), np.array([p + 1]),
                           np.array([0]), np.array([int(tgt) % 4 + 1]))
                rows.append({k: (v.double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, float))
                             for k, v in stat.rows(ch).items()})
        out[d] = rows
    return out


@pytest.mark.parametrize("batch,budget", [(1, 1000), (3, 4), (7, 1), (64, 5)])
def test_docresult_sums_equal_bruteforce_per_token_sums(batch, budget):
    seqs, plans, V = _setup()
    temp, ctx = TemperatureStats([0.5, 1.0, 2.0], V, search=False), ContextStats(12, 5)
    ex, red, docs, sc = _run(seqs, plans, V, batch, budget, [temp, ctx])
    assert sorted(docs) == list(range(len(seqs)))
    for stat in (temp, ctx):
        brute = _brute_rows(seqs, plans, V, sc, stat)
        for d, rows in brute.items():
            r = docs[d]
            for f in stat.fields():
                key = f"{stat.name}.{f.name}"
                if key not in ex.layout.sums:
                    continue
                sl, shape = ex.layout.sums[key]
                got = r.sums[sl]
                ref = np.array([math.fsum(col) for col in
                                np.array([row[f.name].reshape(-1) for row in rows]).T]) if rows else np.zeros(got.size)
                np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=f"doc {d} {key}")
            for key, c in r.counts.items():
                if not key.startswith(stat.name + "."):
                    continue
                fname = key.split(".", 1)[1]
                f = next(x for x in stat.fields() if x.name == fname)
                ref = np.zeros(c.size, np.int64)
                inner = int(np.prod(f.shape, dtype=np.int64))
                for row in rows:
                    np.add.at(ref, row[fname].astype(np.int64).reshape(inner) + np.arange(inner) * f.bins, 1)
                assert (c.ravel() == ref).all(), (d, key)
        # per-document NLL: float64 sum of the per-token float32 NLLs in text order
    for d, r in docs.items():
        assert r.tokens == max(len(seqs[d]) - 1, 0)
        assert r.nll == pytest.approx(math.fsum(r.token_nll.astype(np.float64)), rel=1e-13, abs=1e-13)


def test_totals_bit_identical_for_same_batches_any_order_and_close_otherwise():
    seqs, plans, V = _setup(seed=3)
    make = lambda: [TemperatureStats([0.7, 1.0], V, search=True), ContextStats(12, 5)]  # noqa: E731
    ref_stats = make()
    _, red0, _, _ = _run(seqs, plans, V, 3, 4, ref_stats)
    base = red0.sums.value()
    for order in (lambda n: list(range(n))[::-1], lambda n: list(np.random.default_rng(1).permutation(n))):
        _, red, _, _ = _run(seqs, plans, V, 3, 4, make(), shard_order=order)
        assert red.sums.value().tobytes() == base.tobytes()
    for batch, budget in ((1, 1000), (5, 3), (64, 1000), (2, 1)):
        _, red, _, _ = _run(seqs, plans, V, batch, budget, make())
        np.testing.assert_allclose(red.sums.value(), base, rtol=1e-12, atol=1e-12)
        for k in red0.counts:
            assert (red.counts[k] == red0.counts[k]).all()
