"""Per-document accumulators: exact sums in any order, collect is pure, parts round-trip to the same document."""

import itertools
import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from engine_fakes import Probe, same

from lm_eval_it.engine.accumulate import Accumulator, Collected, Span
from lm_eval_it.engine.checkpoint import decode_part, encode_part
from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import Chunk, Layout

RNG = np.random.default_rng(3)
NLL = (RNG.standard_exponential(12) * 10.0 ** RNG.integers(-6, 3, 12)).astype(np.float32)  # doc 0: 12 targets


def chunk(doc: int, positions, nll=NLL, window: int = 0) -> tuple[Chunk, list[Span], np.ndarray]:
    """One chunk of one window's rows: targets ``positions`` of document ``doc``."""
    pos = np.asarray(positions)
    n = len(pos)
    c = Chunk(None, torch.zeros(n, dtype=torch.long), torch.from_numpy(nll[pos].copy()), np.full(n, doc), pos,
              pos + 1, np.array([0]), (pos % 3 + 1).astype(np.int64))
    return c, [Span(doc, window, int(pos[0]), n, 0)], np.zeros(n, np.int64)


def accumulator(targets=(12,)) -> Accumulator:
    stats = [Probe()]
    return Accumulator(np.array(targets), Layout.of(stats), stats, keep_tokens=True, doc_names=None)


def add(acc: Accumulator, pieces, done=frozenset()) -> None:
    for c, meta, w in pieces:
        rows = {s.name: s.rows(c) for s in acc.stats}
        acc.apply(acc.collect(c, rows, c.nll.numpy(), w, meta, done, False))


def pieces(splits):
    return [chunk(0, range(a, b), window=k) for k, (a, b) in enumerate(zip(splits, splits[1:]))]


def test_sums_counts_and_extremes_do_not_depend_on_the_order_of_chunks():
    ps = pieces([0, 3, 4, 9, 12])
    first = None
    for order in itertools.permutations(range(len(ps))):
        acc = accumulator()
        add(acc, [ps[i] for i in order])
        r = acc.finish(0)
        first = first or r
        same(r, first)
    assert first.token_nll.tobytes() == NLL.tobytes()  # the NLLs in text order, whatever the order of chunks
    assert first.nll == float(np.sum(NLL, dtype=np.float64))


def test_one_row_segments_sum_exactly_float64_reference():
    """Brute force: with one row a segment, the document's sum is the exact sum of its rows, rounded once."""
    acc = accumulator()
    add(acc, [chunk(0, [i], window=i) for i in (5, 0, 11, 3, 1, 2, 4, 6, 10, 7, 8, 9)])
    r = acc.finish(0)
    layout = acc.layout
    rows = NLL.astype(np.float64) * 1e-3 + 1e3
    exact = float(sum((Fraction(float(v)) for v in rows), Fraction(0)))
    assert r.sums[layout.sums["probe.nll"][0]][0] == exact
    pair = r.sums[layout.sums["probe.pair"][0]]
    assert pair[0] == float(sum((Fraction(float(v)) for v in NLL.astype(np.float64)), Fraction(0)))
    assert pair[1] == float(sum(np.arange(12) % 3 + 1))
    assert r.counts["probe.ctx"].tolist() == [0, 1, 1, 10]  # context 1, 2, then 3+ (capped) for the rest
    assert r.extremes["probe.nll_ext"].tolist() == [float(NLL.min()), float(NLL.max())]
    assert r.extra == {"first": float(NLL[0])}


def test_collect_touches_no_document_and_skips_done_or_restored_targets():
    acc = accumulator((12, 4))
    c, meta, w = chunk(0, range(0, 4))
    rows = {"probe": Probe().rows(c)}
    update = acc.collect(c, rows, c.nll.numpy(), w, meta, set(), False)
    assert isinstance(update, Collected) and acc.open == {}  # pure: an out-of-memory retry leaves nothing
    assert update.keep.tolist() == [True] and update.rows is None and update.sums.shape == (1, acc.layout.size)
    assert acc.collect(c, rows, c.nll.numpy(), w, meta, {0}, False).keep.tolist() == [False]  # document done
    acc.apply(update)
    again = acc.collect(c, rows, c.nll.numpy(), w, meta, set(), True)
    assert again.keep.tolist() == [False]  # already covered (a restored window): added once only
    assert set(again.rows) == {"probe"} and again.chunk.targets is not None  # host rows for per-token output


def test_a_document_split_into_parts_merges_to_the_same_result():
    whole = accumulator()
    add(whole, pieces([0, 3, 4, 9, 12]))
    want = whole.finish(0)
    a, b = accumulator(), accumulator()
    add(a, pieces([0, 3, 4, 9, 12])[:2])
    add(b, pieces([0, 3, 4, 9, 12])[2:])
    ((d, part),) = a.partial()
    assert d == 0 and part["covered"].tolist() == [True] * 4 + [False] * 8
    part = decode_part(json.loads(json.dumps(encode_part(part))))  # as a checkpoint line carries it
    got = b.merge_part(0, part)
    assert got is not None and 0 not in b.open
    same(got, want)


def test_merge_part_waits_until_the_document_is_whole():
    a, b = accumulator(), accumulator()
    add(a, pieces([0, 3, 4]))
    ((_, part),) = a.partial()
    assert b.merge_part(0, part) is None and 0 in b.open
    c = accumulator()
    assert c.complete_from_parts([(0, part)]) == [] and c.open == {}  # an incomplete document is forgotten


def test_finish_of_a_document_with_no_targets_is_empty():
    acc = accumulator((0,))
    r = acc.finish(0, acc.new(0))
    assert r.tokens == 0 and r.nll == 0.0 and r.extra == {} and not r.sums.any()


@pytest.mark.parametrize("value,message", [(np.inf, "probability 0 in document #0, window 2"),
                                           (np.nan, "non-finite logits in document #0, window 2")])
def test_a_non_finite_nll_names_document_and_window(value, message):
    acc = accumulator()
    nll = NLL.copy()
    nll[1] = value
    c, meta, w = chunk(0, range(0, 4), nll, window=2)
    with pytest.raises(UserError, match=message):
        acc.check_finite(c.nll.numpy(), c, meta, w, "logits")


def test_a_non_finite_statistic_names_the_field_and_document():
    acc = Accumulator(np.array([12]), accumulator().layout, [Probe()], doc_names=["intro.txt"])
    nll = NLL.copy()
    nll[2] = np.nan
    c, meta, w = chunk(0, range(0, 4), nll, window=1)
    with pytest.raises(UserError, match=r"non-finite statistic probe.nll in document intro.txt, window 1 \(token 2\)"):
        acc.collect(c, {"probe": Probe().rows(c)}, c.nll.numpy(), w, meta, set(), False)
