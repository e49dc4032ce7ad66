"""Byte alignment against brute-force float64 loops: per-byte and per-character bits, Δ per character summing
to the documents' Δ totals, the segments a view colours, and the top lists."""

import math

import numpy as np
import pytest

from lm_eval_it.views.align import (
    byte_bits,
    char_bits,
    char_delta,
    doc_byte_bits,
    segments,
    span_totals,
    token_of_byte,
    word_spans,
)
from lm_eval_it.views.select import top_lists
from lm_eval_it.views.store import DocView, ViewSet

TEXT = "Ünïcödé  words, 数字 123\r\n\tand émojis 🙂🙂 end"


def random_view(text: str, seed: int, empty_every: int = 0) -> DocView:
    """A random cut of ``text``'s bytes into tokens (pieces may split a character), with random NLLs; every
    ``empty_every``-th token has no bytes of its own (a special token)."""
    rng = np.random.default_rng(seed)
    n = len(text.encode())
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n - 1, max(1, n // 3)), replace=False))
    bounds = np.r_[0, cuts, n]
    start, length = list(bounds[:-1]), list(np.diff(bounds))
    if empty_every:
        for i in range(len(start) - 1, 0, -empty_every):
            start.insert(i, start[i]); length.insert(i, 0)
    nll = rng.gamma(2.0, 2.0, len(start))
    return DocView(0, text, np.array(start), np.array(length), nll, np.arange(len(start)))


def brute_bytes(v: DocView) -> list[float]:
    out = [0.0] * v.n_bytes
    for s, n, x in zip(v.start, v.length, v.nll):
        bits = x / math.log(2)
        if n == 0:
            out[min(s, v.n_bytes - 1)] += bits
        for b in range(s, s + n):
            out[b] += bits / n
    return out


@pytest.mark.float64_reference
@pytest.mark.parametrize("seed", range(6))
def test_bytes_and_characters_hold_every_bit_of_the_tokens(seed):
    v = random_view(TEXT, seed, empty_every=3 if seed % 2 else 0)
    got = doc_byte_bits(v)
    assert np.allclose(got, brute_bytes(v), rtol=1e-12, atol=0)
    chars = char_bits(TEXT, got)
    assert len(chars) == len(TEXT)
    widths = [len(c.encode()) for c in TEXT]
    edges = np.r_[0, np.cumsum(widths)]
    assert np.allclose(chars, [sum(brute_bytes(v)[a:b]) for a, b in zip(edges[:-1], edges[1:])], rtol=1e-12)
    assert math.isclose(chars.sum(), v.bits, rel_tol=1e-12)


@pytest.mark.float64_reference
@pytest.mark.parametrize("seed", range(8))
def test_per_character_deltas_sum_to_the_documents_delta_total(seed):
    """Two tokenizations of one text (different cuts, special tokens in one): Σ over characters of
    bits(B) − bits(A) equals B's total bits minus A's, to 1e-9."""
    text = (TEXT * (1 + seed))[: 40 + 37 * seed]
    a, b = random_view(text, seed), random_view(text, 100 + seed, empty_every=4)
    delta = char_delta(a, b)
    total = math.fsum(b.nll) / math.log(2) - math.fsum(a.nll) / math.log(2)
    assert abs(delta.sum() - total) <= 1e-9 * max(1.0, abs(total))


def test_segments_are_runs_of_characters_with_one_value_each():
    a, b = random_view(TEXT, 1), random_view(TEXT, 2)
    n = len(TEXT.encode())
    segs = segments(TEXT, [token_of_byte(a.start, a.length, n), token_of_byte(b.start, b.length, n)])
    assert segs[0][0] == 0 and segs[-1][1] == len(TEXT)
    assert all(e0 == s1 for (_, e0), (s1, _) in zip(segs[:-1], segs[1:]))
    delta = char_delta(a, b)
    for s, e in segs:  # one value per character inside a segment: what a view colours it by
        assert np.allclose(delta[s:e], delta[s], rtol=1e-12, atol=1e-12)
    assert len(segs) < len(TEXT)  # runs, not one per character


def test_a_token_outside_the_text_or_without_bytes_still_lands_on_a_byte():
    got = byte_bits(np.array([0, 3, 9]), np.array([3, 0, 2]), np.array([math.log(2)] * 3), 4)
    assert got.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 2.0])
    assert byte_bits(np.array([0]), np.array([1]), np.array([1.0]), 0).tolist() == []


def test_words_split_on_any_whitespace():
    assert [w for _, _, w in word_spans("a  b\r\n\tc émoji🙂 ")] == ["a", "b", "c", "émoji🙂"]


@pytest.mark.float64_reference
def test_top_lists_are_the_brute_force_totals_by_word():
    texts = ["the cat sat on the mat", "a cat and the dog", "the end"]
    docs_a, docs_b = {}, {}
    for i, t in enumerate(texts):
        docs_a[i] = random_view(t, i)
        docs_b[i] = random_view(t, 50 + i)
    a, b = ViewSet("A", "d", docs_a, True, 3), ViewSet("B", "d", docs_b, True, 3)
    want: dict = {}
    for i, t in enumerate(texts):
        d = np.array(brute_bytes(docs_b[i])) - np.array(brute_bytes(docs_a[i]))
        for s, e, w in word_spans(t):
            got = want.setdefault(w, [0.0, 0])
            got[0] += math.fsum(d[s:e]); got[1] += 1
    lists = top_lists(a, b, by="words", k=50)
    assert lists["complete"] and lists["over"] == "the dataset (3 documents)"
    for x in lists["up"] + lists["down"]:
        assert x["total"] == pytest.approx(want[x["string"]][0], rel=1e-9, abs=1e-12)
        assert x["count"] == want[x["string"]][1]
    assert {x["string"] for x in lists["up"] + lists["down"]} == {w for w, (t, _) in want.items() if t != 0}
    assert all(x["total"] > 0 for x in lists["up"]) and all(x["total"] < 0 for x in lists["down"])
    assert [x["total"] for x in lists["up"]] == sorted((x["total"] for x in lists["up"]), reverse=True)


def test_span_totals_add_up_by_string():
    per_byte = np.arange(6, dtype=float)
    got = span_totals(per_byte, [(0, 2, "x"), (2, 3, "y"), (4, 6, "x")])
    assert got == {"x": [0 + 1 + 4 + 5, 2], "y": [2.0, 1]}
