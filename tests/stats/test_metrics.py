"""Metrics from totals, against hand-computed values."""

import math

import pytest

from lm_eval_it.stats.metrics import Totals, count_words, summarize


def test_word_count_is_lm_evals_definition():
    assert count_words("a b  c") == 3
    assert count_words(" a b") == 3          # a leading space yields an empty first piece, as in lm-eval
    assert count_words("one\r\ntwo\n") == 3  # trailing whitespace: empty last piece
    assert count_words("") == 1


def test_text_counts_are_utf8_bytes_and_chars():
    t = Totals.of_text("héllo wörld\r\n", nll=1.0, tokens=3)
    assert (t.bytes, t.chars, t.words, t.docs) == (15, 13, 3, 1)


def test_hand_computed_metrics():
    # 8 tokens, 20 bytes, 4 words, 18 chars, NLL = 8 ln 2 * 3 nats (3 bits per token)
    t = Totals(nll=24 * math.log(2), tokens=8, bytes=20, words=4, chars=18, docs=1)
    m = summarize(t)
    assert m["bits_per_token"] == pytest.approx(3.0, rel=1e-12)
    assert m["token_perplexity"] == pytest.approx(8.0, rel=1e-12)
    assert m["bits_per_byte"] == pytest.approx(24 / 20, rel=1e-12)
    assert m["byte_perplexity"] == pytest.approx(2 ** (24 / 20), rel=1e-12)
    assert m["bits_per_word"] == pytest.approx(6.0, rel=1e-12)
    assert m["word_perplexity"] == pytest.approx(64.0, rel=1e-12)
    assert m["bits_per_char"] == pytest.approx(24 / 18, rel=1e-12)
    assert m["tokens_per_byte"] == pytest.approx(0.4) and m["bytes_per_token"] == pytest.approx(2.5)


def test_sum_then_divide_is_not_mean_of_means():
    a = Totals(nll=10.0, tokens=10, bytes=10, words=2, chars=10, docs=1)
    b = Totals(nll=90.0, tokens=10, bytes=30, words=8, chars=30, docs=1)
    m = summarize(a + b)
    assert m["bits_per_byte"] == pytest.approx(100 / 40 / math.log(2))  # 2.5 nats per byte
    mean_of_means = (summarize(a)["bits_per_byte"] + summarize(b)["bits_per_byte"]) / 2
    assert mean_of_means == pytest.approx(2.0 / math.log(2))  # what averaging per-document ratios would say
    assert (a + b).docs == 2 and (a + b).tokens == 20


def test_empty_totals_give_nan_not_errors():
    m = summarize(Totals())
    assert math.isnan(m["bits_per_byte"]) and math.isnan(m["token_perplexity"])


def test_overflowing_perplexity_is_inf():
    m = summarize(Totals(nll=1e6, tokens=1, bytes=1, words=1, chars=1, docs=1))
    assert m["token_perplexity"] == math.inf
