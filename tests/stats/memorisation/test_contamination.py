"""Memorisation signals against hand-computed values."""

import math
import zlib
from fractions import Fraction

import numpy as np
import pytest

from lm_eval_it.stats.memorisation.signals import (
    flag_outliers,
    min_k_count,
    min_k_percent,
    robust_z,
    top_flagged,
    zlib_bits,
    zlib_ratio,
)


def test_min_k_count_definition():
    assert min_k_count(10, 20) == 2
    assert min_k_count(11, 20) == 3          # ceil(2.2)
    assert min_k_count(3, 20) == 1           # ceil(0.6)
    assert min_k_count(1, 1) == 1            # never fewer than one token
    assert min_k_count(100, 7) == 7          # 0.07 * 100 is not 7.000000000000001 here
    assert min_k_count(30, 0.1) == 1
    assert min_k_count(5, 100) == 5
    assert min_k_count(0, 20) == 0
    with pytest.raises(ValueError):
        min_k_count(10, 0)
    with pytest.raises(ValueError):
        min_k_count(10, 120)


def test_min_k_percent_hand_computed():
    nll = np.array([0.5, 4.0, 0.25, 1.0, 2.0, 0.125, 3.0, 0.75, 1.5, 0.0625], dtype=np.float32)
    # k=20 of 10 tokens -> the 2 largest NLLs 4.0 and 3.0 -> mean log-prob -3.5
    assert min_k_percent(nll, 20) == -3.5
    # k=35 -> ceil(3.5) = 4 tokens: 4, 3, 2, 1.5 -> -10.5 / 4
    assert min_k_percent(nll, 35) == -2.625
    assert min_k_percent(nll, 100) == pytest.approx(-nll.astype(np.float64).mean(), rel=1e-15)
    assert min_k_percent(np.array([0.7], dtype=np.float32), 20) == pytest.approx(-0.7, rel=1e-7)
    assert math.isnan(min_k_percent(np.array([], dtype=np.float32), 20))


def test_min_k_ties_do_not_matter_and_input_is_not_modified():
    nll = np.array([1.0, 2.0, 2.0, 2.0, 0.0], dtype=np.float32)
    before = nll.copy()
    assert min_k_percent(nll, 40) == -2.0
    assert np.array_equal(nll, before)


@pytest.mark.float64_reference
def test_min_k_matches_brute_force_sort():
    rng = np.random.default_rng(0)
    for n in (1, 7, 50, 333):
        x = rng.gamma(2.0, 1.5, size=n).astype(np.float32)
        for k in (5, 20, 50):
            m = max(1, math.ceil(k * n / 100))
            brute = -np.sort(x.astype(np.float64))[::-1][:m].sum() / m
            assert min_k_percent(x, k) == pytest.approx(brute, rel=1e-12)


def test_zlib_ratio_hand_computed():
    text = "hello hello hello hello"
    zbytes = len(zlib.compress(text.encode(), 9))
    assert zlib_bits(text) == 8 * zbytes
    nll = 40 * math.log(2)  # 40 bits
    assert zlib_ratio(nll, text) == pytest.approx(40 / (8 * zbytes), rel=1e-12)
    assert zlib_bits("") == 8 * len(zlib.compress(b"", 9))
    assert zlib_bits("é") == 8 * len(zlib.compress("é".encode("utf-8"), 9))


def test_robust_z_hand_computed():
    z = robust_z([1.0, 2.0, 3.0, 4.0, 100.0])   # median 3, MAD 1
    assert z == pytest.approx([-2 / 1.4826, -1 / 1.4826, 0.0, 1 / 1.4826, 97 / 1.4826], rel=1e-12)


def test_robust_z_mad_zero_falls_back_to_mean_abs_deviation():
    # median 5, absolute deviations [0,0,0,0,10] -> MAD 0, mean abs dev 2 -> scale 1.2533 * 2
    z = robust_z([5.0, 5.0, 5.0, 5.0, 15.0])
    assert z == pytest.approx([0, 0, 0, 0, 10 / (1.2533 * 2)], rel=1e-12)
    assert robust_z([2.0, 2.0, 2.0]).tolist() == [0.0, 0.0, 0.0]   # all equal: nothing is an outlier
    z = robust_z([1.0, float("nan"), 3.0, 2.0])                    # NaN ignored: median 2, MAD 1
    assert z[0] == pytest.approx(-1 / 1.4826) and math.isnan(z[1])
    assert np.isnan(robust_z([float("nan")])).all() and robust_z([]).size == 0


def test_flag_outliers_direction_and_order():
    vals = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 0.1, 0.2, 5.0, float("nan")]
    low = flag_outliers(vals, "low")
    high = flag_outliers(vals, "high")
    z = robust_z(vals)
    assert low == [6, 7] and z[6] < z[7] <= -3.5      # most suspicious (lowest) first
    assert high == [8]
    assert flag_outliers(vals, "low", threshold=100) == []
    with pytest.raises(ValueError):
        flag_outliers(vals, "up")


def test_top_flagged_rows():
    texts = [f"doc {i} " + "x" * 300 for i in range(8)]
    zr = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 0.1, 1.0]    # doc 6 suspiciously low
    mk = [-3.0, -3.2, -2.9, -3.1, -3.0, -0.2, -3.0, -0.5]  # docs 5 and 7 suspiciously high
    rows = [{"doc": f"d{i}", "text": t, "zlib_ratio": a, "min_k": b} for i, (t, a, b) in enumerate(zip(texts, zr, mk))]
    out = top_flagged(rows)
    # zlib: median 1.0, MAD 0.05 -> z6 = -0.9 / (1.4826 * 0.05) = -12.14
    # min_k: median -3.0, MAD 0.1 -> z5 = 2.8 / 0.14826 = 18.89, z7 = 2.5 / 0.14826 = 16.86
    assert [r["doc"] for r in out] == ["d5", "d7", "d6"]
    assert out[0]["flags"] == ["min_k"] and out[0]["score"] == pytest.approx(2.8 / 0.14826, rel=1e-9)
    assert out[1]["score"] == pytest.approx(2.5 / 0.14826, rel=1e-9)
    assert out[2]["flags"] == ["zlib_ratio"] and out[2]["score"] == pytest.approx(0.9 / (1.4826 * 0.05), rel=1e-9)
    assert out[2]["z_zlib_ratio"] == pytest.approx(-0.9 / (1.4826 * 0.05), rel=1e-9)
    assert out[2]["zlib_ratio"] == 0.1 and out[2]["z_min_k"] == 0.0
    assert out[2]["excerpt"] == texts[6][:200] and len(out[0]["excerpt"]) == 200
    assert len(top_flagged(rows, n=1)) == 1 and top_flagged([]) == []


def test_doc_flagged_by_both_signals_is_one_row_ranked_by_its_worst():
    rows = [{"text": "t", "zlib_ratio": a, "min_k": b}
            for a, b in [(1.0, -3.0), (1.1, -3.1), (0.9, -2.9), (1.0, -3.0), (0.2, -0.1)]]
    out = top_flagged(rows)
    # zlib: median 1.0, MAD 0.1 -> z = -8/1.4826; min_k: median -3.0, MAD 0.1 -> z = 2.9/0.14826
    assert len(out) == 1 and out[0]["doc"] == 4 and out[0]["flags"] == ["zlib_ratio", "min_k"]
    assert out[0]["score"] == pytest.approx(max(0.8 / 0.14826, 2.9 / 0.14826), rel=1e-9)
    assert top_flagged([{"text": "only min_k", "min_k": -1.0}]) == []   # missing signal is NaN


@pytest.mark.float64_reference
def test_min_k_and_robust_z_bruteforce():
    from lm_eval_it.stats.memorisation.signals import min_k_percent, robust_z

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 100, 333):
        x = rng.gamma(1.0, 2.0, n).astype(np.float32)
        for k in (0.1, 7, 20, 33.3, 100):
            m = max(1, math.ceil(Fraction(str(k)) * n / 100))
            ref = -math.fsum(sorted(x.astype(np.float64))[-m:]) / m
            assert min_k_percent(x, k) == pytest.approx(ref, rel=1e-14)
    v = rng.normal(0, 1, 101); v[5] = np.nan
    ok = v[~np.isnan(v)]
    med = np.median(ok); mad = np.median(np.abs(ok - med))
    np.testing.assert_allclose(robust_z(v)[~np.isnan(v)], (ok - med) / (1.4826 * mad), rtol=1e-13)
    assert np.isnan(robust_z(v)[5])
    # MAD = 0 fallback: more than half equal
    w = np.array([1.0, 1, 1, 1, 5, -3]); dev = np.abs(w - 1)
    np.testing.assert_allclose(robust_z(w), (w - 1) / (1.2533 * dev.mean()))
