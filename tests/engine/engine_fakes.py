"""Fakes for the engine's unit tests: a batch-free scorer, a probe statistic, small sequences, bitwise equality."""

from __future__ import annotations

import numpy as np
import torch

from lm_eval_it.backends.logits import token_nll
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.prepare import from_sequences
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.stats.base import Count, Extreme, Statistic, Sum

V = 37


class FakeScorer:
    """Logits that depend only on (current token, previous token, input column): the same in any batch.

    ``oom_once``: the first batch of more than one window raises ``torch.OutOfMemoryError``.
    ``batches`` records the number of windows of every batch it was asked to score.
    """

    device = "cpu"
    reference = None

    def __init__(self, vocab: int = V, budget_rows: int = 1000, seed: int = 0, oom_once: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.vocab, self.rows, self.oom_once = vocab, budget_rows, oom_once
        self.E = torch.randn(vocab, vocab, generator=g) * 3
        self.F = torch.randn(vocab + 1, vocab, generator=g)
        self.G = torch.randn(5, vocab, generator=g) * 0.5
        self.batches: list[int] = []

    def chunks(self, ids, mask, rows, cols, targets):
        if self.oom_once and len(ids) > 1:
            self.oom_once = False
            raise torch.OutOfMemoryError("fake: out of memory")
        self.batches.append(len(ids))
        cur = ids[rows, cols]
        prev = torch.where(cols > 0, ids[rows, (cols - 1).clamp_min(0)], torch.full_like(cols, self.vocab))
        logits = (self.E[cur] + self.F[prev] + self.G[cols % 5]).float()
        for i in range(0, len(targets), self.rows):
            lg = logits[i : i + self.rows]
            yield i, min(i + self.rows, len(targets)), lg, None, token_nll(lg, targets[i : i + self.rows])


class Probe(Statistic):
    """One field of each kind, from the NLL, the context and the target bytes of each row."""

    name = "probe"

    def fields(self) -> list:
        return [Sum("nll", per_document=True), Sum("pair", (2,)), Count("ctx", (), bins=4), Extreme("nll_ext")]

    def rows(self, chunk) -> dict:
        nll = chunk.nll.double()
        return {"nll": nll * 1e-3 + 1e3,  # cancellation-prone magnitudes: only exact sums stay order-free
                "pair": torch.stack([nll, torch.as_tensor(chunk.target_bytes, dtype=torch.float64)], 1),
                "ctx": np.minimum(chunk.context, 3), "nll_ext": nll}

    def finish_document(self, token_nll) -> dict:
        return {"first": float(token_nll[0])} if len(token_nll) else {}


def sequences(seed: int = 0, lengths=(2, 9, 30, 61, 5, 44, 17), window: int = 12, stride: int = 5):
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, V, int(n)).astype(np.int32) for n in lengths]
    return seqs, [plan_windows(len(s), window, stride) for s in seqs]


def prepared(seed: int = 0, **kw):
    seqs, plans = sequences(seed, **kw)
    p = from_sequences(seqs, plans, None, V)
    p.byte_table = np.arange(V, dtype=np.int32) % 4 + 1
    return p


def executor(batch: int, scorer: FakeScorer | None = None, stats=None, **kw) -> Executor:
    return Executor(prepared(), scorer or FakeScorer(), [Probe()] if stats is None else stats, batch,
                    keep_tokens=True, **kw)


def same(a, b) -> None:
    """Two document results are equal to the last bit (token NLLs where both hold them)."""
    assert a.doc == b.doc and a.nll.hex() == b.nll.hex() and a.tokens == b.tokens
    assert a.sums.tobytes() == b.sums.tobytes()
    assert a.counts.keys() == b.counts.keys() and all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts)
    assert a.extremes.keys() == b.extremes.keys()
    assert all(a.extremes[k].tobytes() == b.extremes[k].tobytes() for k in a.extremes)
    assert {k: v.hex() for k, v in a.extra.items()} == {k: v.hex() for k, v in b.extra.items()}
    if a.token_nll is not None and b.token_nll is not None:  # a checkpointed document has none
        assert a.token_nll.tobytes() == b.token_nll.tobytes()
