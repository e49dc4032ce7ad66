"""Intervals over documents: t quantiles, linearised variance with Bell–McCaffrey df, paired Δ, coverage."""

import math

import numpy as np
import pytest

from lm_eval_it.stats.intervals import (
    MIN_DOCUMENTS,
    bits_per_byte_interval,
    metric_intervals,
    paired_delta,
    ratio_interval,
    ratio_stats,
    size_correction,
    size_traces,
)
from lm_eval_it.stats.student_t import t_cdf, t_quantile

LN2 = math.log(2)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995])
def test_t_quantile_matches_closed_forms(p):
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-11)      # Cauchy
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-11)
    a = 4 * p * (1 - p)                                                                        # df 4, closed form
    q = math.cos(math.acos(math.sqrt(a)) / 3) / math.sqrt(a)
    assert t_quantile(p, 4) == pytest.approx(math.copysign(2 * math.sqrt(q - 1), p - 0.5), rel=1e-10)
    assert t_quantile(1 - p, 3.7) == pytest.approx(-t_quantile(p, 3.7), rel=1e-12)
    assert t_cdf(t_quantile(p, 2.5), 2.5) == pytest.approx(p, abs=1e-13)


def test_t_quantile_table_values_and_normal_limit():
    assert t_quantile(0.975, 9) == pytest.approx(2.262157162798, abs=1e-9)
    assert t_quantile(0.975, 30) == pytest.approx(2.042272456301, abs=1e-9)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959963984540054, abs=1e-12)
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def dense_traces(x):
    """tr S, tr K, tr K² with K = M S Mᵀ, M = I − w1ᵀ, built as float64 matrices."""
    x = np.asarray(x, dtype=np.float64)
    m = np.eye(x.size) - np.outer(x / x.sum(), np.ones(x.size))
    s = np.diag(x * x)
    k = m @ s @ m.T
    return np.trace(s), np.trace(k), np.trace(k @ k)


@pytest.mark.parametrize("x", [[1, 2, 3, 10, 50], [117, 13177, 74941, 5400, 2553, 9305], [4, 4, 4], [7, 0, 3, 1]])
def test_size_traces_match_dense_matrices(x):
    assert size_traces(x) == pytest.approx(dense_traces(x), rel=1e-10)


def test_size_correction_is_textbook_for_equal_sizes_and_shrinks_df_for_one_long_document():
    assert size_correction([5.0] * 10) == pytest.approx((10 / 9, 9.0))
    s1, tr, tr2 = dense_traces([100, 100, 100, 100, 5000])
    scale, df = size_correction([100, 100, 100, 100, 5000])
    assert (scale, df) == pytest.approx((s1 / tr, tr * tr / tr2))
    assert 1.0 < df < 1.5                               # one document holds 93% of the bytes (equal sizes: df 4)


def test_ratio_interval_hand_computed():
    # per-document nats/byte 1, 2, 3, 4 on equal bytes: R = 2.5, se = sd/√n = 1.2910/2, df 3
    r = ratio_stats([10.0, 20.0, 30.0, 40.0], [10, 10, 10, 10])
    assert r["estimate"] == 2.5 and r["df"] == 3.0
    assert r["se"] == pytest.approx(math.sqrt(5 / 3) / 2, rel=1e-12)
    q = 3.182446305284263                              # t(0.975, 3)
    assert (r["low"], r["high"]) == pytest.approx((2.5 - q * r["se"], 2.5 + q * r["se"]), rel=1e-10)
    assert bits_per_byte_interval([10.0, 20.0, 30.0, 40.0], [10] * 4) == pytest.approx(
        (r["low"] / LN2, r["high"] / LN2))


@pytest.mark.float64_reference
def test_ratio_interval_brute_force_unequal_sizes():
    rng = np.random.default_rng(3)
    x = rng.lognormal(9.5, 1.0, 15).round()
    y = x * rng.normal(0.7, 0.1, 15)
    s1, tr, tr2 = dense_traces(x)
    big_r = y.sum() / x.sum()
    se = math.sqrt(s1 / tr * ((y - big_r * x) ** 2).sum()) / x.sum()
    q = t_quantile(0.975, tr * tr / tr2)
    assert ratio_interval(y, x) == pytest.approx((big_r - q * se, big_r + q * se), rel=1e-10)


def test_paired_delta_on_the_same_bytes_is_the_ratio_of_differences():
    rng = np.random.default_rng(4)
    x = rng.integers(100, 5000, 12).astype(float)
    a = x * rng.normal(0.8, 0.1, 12)
    b = a - x * rng.normal(0.05, 0.02, 12)
    d = paired_delta(a, x, b, x)
    r = ratio_stats(a - b, x)
    assert d["delta"] == pytest.approx(r["estimate"] / LN2, rel=1e-12)
    assert (d["low"], d["high"], d["se"], d["df"]) == pytest.approx(
        (r["low"] / LN2, r["high"] / LN2, r["se"] / LN2, r["df"]), rel=1e-10)
    assert d["significant"] is True and d["method"] == "linearised_t" and d["documents"] == 12


@pytest.mark.float64_reference
def test_paired_delta_with_different_bytes_brute_force():
    xa, xb = np.array([100.0, 210, 330, 80, 500]), np.array([102.0, 208, 331, 80, 497])
    a, b = np.array([70.0, 150, 240, 60, 330]), np.array([80.0, 160, 250, 55, 360])
    d = paired_delta(a, xa, b, xb)
    ra, rb = a.sum() / xa.sum(), b.sum() / xb.sum()
    x = (xa + xb) / 2
    infl = (a - ra * xa) / xa.sum() - (b - rb * xb) / xb.sum()    # d(Δ)/d(document weight)
    s1, tr, tr2 = dense_traces(x)
    se = math.sqrt(s1 / tr * (infl ** 2).sum()) / LN2
    assert d["delta"] == pytest.approx((ra - rb) / LN2, rel=1e-12)
    assert d["se"] == pytest.approx(se, rel=1e-10) and d["df"] == pytest.approx(tr * tr / tr2, rel=1e-10)


def test_intervals_are_deterministic_and_need_two_documents():
    per_doc = [{"nll": n, "tokens": t, "bytes": b, "words": w, "chars": c}
               for n, t, b, w, c in [(10, 5, 20, 4, 20), (30, 9, 40, 8, 39), (5, 3, 9, 2, 9), (50, 20, 70, 14, 70)]]
    iv = metric_intervals(per_doc)
    assert iv == metric_intervals(per_doc) and iv["method"] == "linearised_t" and iv["few_documents"] is True
    lo, hi = iv["bits_per_token"]
    assert iv["token_perplexity"] == pytest.approx([math.exp(lo * LN2), math.exp(hi * LN2)])
    assert iv["df"]["bits_per_byte"] == pytest.approx(ratio_stats([10, 30, 5, 50], [20, 40, 9, 70])["df"])
    assert ratio_interval([1.0], [2.0]) is None and metric_intervals(per_doc[:1])["bits_per_byte"] is None


def nothing_scored_case(scored: int, n: int = 12):
    """``n`` documents, the last ``n − scored`` one token long under ``prefix: none`` (0 tokens, 0 bytes, 0 NLL);
    model A is 1.62 bits/byte worse on every scored document."""
    rng = np.random.default_rng(7)
    nbytes = np.where(np.arange(n) < scored, rng.integers(200, 3000, n), 0).astype(float)
    nll_b = nbytes * rng.uniform(0.6, 0.8, n)
    nll_a = nll_b + 1.62 * LN2 * nbytes * rng.uniform(0.9, 1.1, n)
    return nll_a, nbytes, nll_b


def test_documents_that_score_nothing_never_blank_the_intervals():
    # the case: 12 documents, 8 of them one token long; the old bootstrap drew resamples of only those
    nll_a, nbytes, nll_b = nothing_scored_case(scored=4)
    d = paired_delta(nll_a, nbytes, nll_b, nbytes)
    assert math.isfinite(d["low"]) and math.isfinite(d["high"]) and d["low"] > 1.0
    assert d["documents"] == 4 and d["documents_without_scored_tokens"] == 8
    assert d["few_documents"] is True and d["significant"] is None      # 4 documents carry the evidence, not 12
    rows = [{"nll": v, "tokens": int(b // 4), "bytes": b, "words": int(b > 0), "chars": b}
            for v, b in zip(nll_a, nbytes)]
    iv = metric_intervals(rows)
    assert all(math.isfinite(v) for k in ("bits_per_byte", "bits_per_token", "bits_per_word")
               for v in iv[k])
    assert iv["documents_without_scored_tokens"] == 8 and iv["documents"] == 4


def test_a_large_delta_is_significant_when_enough_documents_scored():
    nll_a, nbytes, nll_b = nothing_scored_case(scored=10)
    d = paired_delta(nll_a, nbytes, nll_b, nbytes)
    assert d["significant"] is True and d["documents_without_scored_tokens"] == 2
    assert d["delta"] == pytest.approx((nll_a.sum() - nll_b.sum()) / nbytes.sum() / LN2)


def wikitext_like(rng, n):
    """Document bytes and two models' NLL with no true difference (as in benchmarks/coverage.py)."""
    x = np.maximum(1.0, np.round(rng.lognormal(9.518, 1.078, n)))
    t = np.maximum(1.0, np.round(x / 4.3))
    a = (0.70 + 0.12 * rng.standard_normal(n)) * x + 2.5 * np.sqrt(t) * rng.standard_normal(n)
    b = a + 0.02 * x * rng.standard_normal(n) + 0.8 * np.sqrt(t) * rng.standard_normal(n)
    return x, a, b


def test_paired_delta_with_no_true_difference_is_rarely_significant_at_10_documents():
    rng = np.random.default_rng(11)
    datasets = (wikitext_like(rng, 10) for _ in range(800))
    hits = sum(bool(paired_delta(a, x, b, x)["significant"]) for x, a, b in datasets)
    assert MIN_DOCUMENTS <= 10
    assert hits / 800 <= 0.05            # the percentile bootstrap: 14% here (benchmarks/coverage.py)


def test_bits_per_byte_interval_holds_95_percent_at_10_documents():
    rng = np.random.default_rng(12)
    covered = 0
    for _ in range(800):
        x, a, _ = wikitext_like(rng, 10)
        lo, hi = ratio_interval(a, x)
        covered += lo <= 0.70 <= hi       # population ratio: difficulty independent of length here
    assert covered / 800 >= 0.94          # the percentile bootstrap: 86%


def test_intervals_never_go_below_zero_bits():
    # two very unequal documents: the t interval with ~1 df reaches far below 0 nats/byte, which no NLL can be
    rows = [dict(nll=2.0 * 117, tokens=30, bytes=117, words=20, chars=117),
            dict(nll=0.6 * 74940, tokens=17000, bytes=74940, words=12000, chars=74940)]
    iv = metric_intervals(rows)
    for key in ("bits_per_token", "bits_per_byte", "bits_per_word", "bits_per_char"):
        lo, hi = iv[key]
        assert lo >= 0.0 and hi > lo, key
    assert iv["token_perplexity"][0] >= 1.0
    assert iv["bits_per_byte"][0] == 0.0                        # the cut applies in this case
