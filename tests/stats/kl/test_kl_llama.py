"""llama-perplexity's KL statistics: every figure against a float64 brute force, the histogram bound, end to end."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import perturbed_copy, write_config

from lm_eval_it.backends.logits import token_nll
from lm_eval_it.cli import main
from lm_eval_it.engine.checkpoint import _pack_counts, _unpack_counts
from lm_eval_it.stats.base import Chunk, Count, Extreme
from lm_eval_it.stats.kl.histogram import DP_BINS, KLD_BINS, REL
from lm_eval_it.stats.kl.llama import DP_PCT, FIELDS, KLD_PCT, llama_kl
from lm_eval_it.stats.kl.statistic import KLStats


def llama_percentile(sorted_x: np.ndarray, fraction: float) -> tuple[float, int, float]:
    """llama.cpp's percentile lambda on exact sorted values: (value, ip, p), index in float32 as there."""
    f = np.float32(fraction)
    if f <= 0:
        return float(sorted_x[0]), 0, 0.0
    if f >= 1:
        return float(sorted_x[-1]), len(sorted_x) - 1, 0.0
    p = np.float32(f * np.float32(len(sorted_x) - 1))
    ip = int(p)
    p = float(np.float32(p - np.float32(ip)))
    return float((1 - p) * sorted_x[ip] + p * sorted_x[min(ip + 1, len(sorted_x) - 1)]), ip, p


def llama_median(x: np.ndarray) -> float:
    n = len(x)
    return float(x[n // 2]) if n % 2 else float(0.5 * (x[n // 2] + x[n // 2 - 1]))


def check_bins(bins, values: np.ndarray, floor: float) -> None:
    """Every llama percentile and the median from the histogram lie within the documented bound of the exact one."""
    x = np.sort(values.astype(np.float64))
    counts = np.bincount(bins.index(torch.from_numpy(x)).numpy(), minlength=bins.size)
    lo, hi = float(x[0]), float(x[-1])
    for f in (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0):
        exact, ip, p = llama_percentile(x, f)
        a, b = x[ip], x[min(ip + 1, len(x) - 1)]
        bound = REL * ((1 - p) * abs(a) + p * abs(b)) + floor + 1e-15
        got = bins.percentile(counts, f, lo, hi)
        assert abs(got - exact) <= bound, (f, got, exact, bound)
    m = llama_median(x)
    assert abs(bins.median(counts, lo, hi) - m) <= REL * abs(m) + floor + 1e-15


@pytest.mark.float64_reference
@pytest.mark.parametrize("n", [1, 2, 5, 9, 11, 1000, 20001])
def test_kld_percentiles_within_bound(n):
    rng = np.random.default_rng(n)
    x = np.exp(rng.normal(-8, 4, n))  # 1e-12 … 1e2 nats
    x[rng.random(n) < 0.1] = 0.0
    x[rng.random(n) < 0.05] = 1e-13  # underflow bin
    x[: n // 3] = x[0]  # ties
    check_bins(KLD_BINS, x, 1e-10)


@pytest.mark.float64_reference
@pytest.mark.parametrize("n", [1, 3, 10, 1000, 20001])
def test_dp_percentiles_within_bound(n):
    rng = np.random.default_rng(100 + n)
    x = np.sign(rng.normal(size=n)) * np.exp(rng.normal(-6, 3, n)).clip(max=1.0)
    x[rng.random(n) < 0.1] = 0.0
    x[rng.random(n) < 0.05] = -3e-9
    x[n // 2:] = np.where(rng.random(n - n // 2) < 0.3, x[-1], x[n // 2:])  # ties
    if n > 3:
        x[:2] = [-1.0, 1.0]
    check_bins(DP_BINS, x, 1e-7)


def test_all_zero_kld_and_dp_are_exactly_zero():
    z = torch.zeros(50, dtype=torch.float64)
    for bins in (KLD_BINS, DP_BINS):
        c = np.bincount(bins.index(z).numpy(), minlength=bins.size)
        assert bins.median(c, 0.0, 0.0) == 0.0 and bins.percentile(c, 0.99, 0.0, 0.0) == 0.0


def summary_by_chunks(zr, zc, t, parts=3):
    """KLStats over ``parts`` chunks, totals summed and counts added (as documents and ranks merge)."""
    stat, n = KLStats([1.0]), len(t)
    totals, ext = {}, {}
    for idx in np.array_split(np.arange(n), parts):
        r, c, tt, m = zr[idx], zc[idx], t[idx], len(idx)
        rows = stat.rows(Chunk(c, tt, token_nll(c, tt), np.zeros(m, int), np.arange(m), np.arange(m) + 1,
                               np.array([0]), np.ones(m, int), r))
        for f in stat.fields():
            v = rows[f.name]
            v = v.numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
            if isinstance(f, Count):
                totals[f.name] = totals.get(f.name, 0) + np.bincount(v, minlength=f.bins)
            elif isinstance(f, Extreme):
                lo, hi = ext.get(f.name, (math.inf, -math.inf))
                ext[f.name] = (min(lo, float(v.min())), max(hi, float(v.max())))
            else:
                s = np.array([math.fsum(col) for col in v.astype(np.float64).reshape(m, -1).T])
                totals[f.name] = totals.get(f.name, 0) + (s if f.shape else s[0])
    return stat.summarize(totals, {"tokens": n, "extremes": ext})


def mu(x):
    """llama's mean_and_uncertainty from the values themselves (float64)."""
    n, f = len(x), x.mean()
    df = (x * x).mean() - f * f
    return f, (math.sqrt(df / (n - 1)) if df > 0 and n > 10 else 0.0)


@pytest.mark.float64_reference
@pytest.mark.parametrize("n", [7, 400])
def test_every_figure_matches_float64_bruteforce(n):
    g = torch.Generator().manual_seed(n)
    V = 200
    zr = torch.randn(n, V, generator=g) * 2
    zc = zr + 0.5 * torch.randn(n, V, generator=g)
    t = torch.multinomial(torch.softmax(zr, -1), 1, generator=g).squeeze(1)
    s = summary_by_chunks(zr, zc, t)
    b = s["llama"]
    lr, lc = torch.log_softmax(zr.double(), -1).numpy(), torch.log_softmax(zc.double(), -1).numpy()
    kld = (np.exp(lr) * (lr - lc)).sum(-1)
    nb, nq = -lr[np.arange(n), t.numpy()], -lc[np.arange(n), t.numpy()]
    dp = np.exp(-nq) - np.exp(-nb)
    (lq, sq), (lb, sb) = mu(nq), mu(nb)
    cov = 0.0 if n < 10 else ((nq * nb).mean() - nq.mean() * nb.mean()) / (n - 1)
    ratio_se = math.sqrt(max(sq**2 + sb**2 - 2 * cov, 0))
    ppl_q, ppl_b = math.exp(lq), math.exp(lb)
    same = (zr.argmax(-1) == zc.argmax(-1)).double().mean().item()
    mse, mse_se = mu(dp**2)
    want = {"ppl_q": ppl_q, "ppl_q_se": ppl_q * sq, "ppl_base": ppl_b, "ppl_base_se": ppl_b * sb,
            "ln_ppl_ratio": lq - lb, "ln_ppl_ratio_se": ratio_se, "ppl_ratio": math.exp(lq - lb),
            "ppl_ratio_se": math.exp(lq - lb) * ratio_se, "ppl_diff": ppl_q - ppl_b,
            "ppl_diff_se": math.sqrt(max((ppl_q * sq) ** 2 + (ppl_b * sb) ** 2 - 2 * ppl_q * ppl_b * cov, 0)),
            "kld_mean": mu(kld)[0], "kld_se": mu(kld)[1], "kld_max": kld.max(), "kld_min": kld.min(),
            "dp_mean": mu(dp)[0], "dp_se": mu(dp)[1], "dp_max": dp.max(), "dp_min": dp.min(),
            "dp_rms": math.sqrt(mse), "dp_rms_se": 0.5 / math.sqrt(mse) * mse_se, "max_abs_dp": abs(dp).max(),
            "same_top": same, "same_top_se": math.sqrt(same * (1 - same) / (n - 1))}
    if n >= 10:
        want["cor_ln_ppl"] = cov / (sq * sb)
        assert 0.5 < want["cor_ln_ppl"] < 1
    else:
        assert sq == 0 and math.isnan(b["cor_ln_ppl"])  # 0/0: llama.cpp prints nan too
    for k, v in want.items():
        assert b[k] == pytest.approx(v, rel=2e-5, abs=1e-6 * (k.startswith("dp") or k.startswith("ln"))), k
    ks, ds = np.sort(kld), np.sort(dp)
    for k, f in KLD_PCT:
        assert b[f"kld_{k}"] == pytest.approx(llama_percentile(ks, f)[0], rel=REL + 1e-5), k
    for k, f in DP_PCT:
        assert b[f"dp_{k}"] == pytest.approx(llama_percentile(ds, f)[0], rel=REL + 1e-5, abs=2e-7), k
    assert b["kld_median"] == pytest.approx(llama_median(ks), rel=REL + 1e-5)
    assert b["dp_median"] == pytest.approx(llama_median(ds), rel=REL + 1e-5, abs=2e-7)
    assert b["count"] == n and set(b) == set(FIELDS) | {"count", "method"}
    assert "exact from float32 logits" in b["method"] and "within 0.1% relative (histogram" in b["method"]
    # the existing KL block is unchanged by the addition and agrees where they overlap
    assert b["kld_mean"] == s["per_temperature"][0]["kl_ref_cand_nats"] and b["same_top"] == s["same_top1"]


def test_few_tokens_follow_llama_rules():
    s = {"count": 1, "nll": 2.0, "nll2": 4.0, "nll_base": 1.0, "nll_base2": 1.0, "nll_nll_base": 2.0, "kld": 0.5,
         "kld2": 0.25, "dp": -0.1, "dp2": 0.01, "dp4": 1e-4, "same_top": 1}
    kc = np.bincount(KLD_BINS.index(torch.tensor([0.5])).numpy(), minlength=KLD_BINS.size)
    dc = np.bincount(DP_BINS.index(torch.tensor([-0.1])).numpy(), minlength=DP_BINS.size)
    b = llama_kl(s, kc, dc, (0.5, 0.5), (-0.1, -0.1))
    assert b["ppl_q"] == pytest.approx(math.e**2) and b["ppl_q_se"] == 0.0 and b["ln_ppl_ratio"] == 1.0
    assert b["kld_median"] == 0.5 and b["kld_p99_9"] == 0.5 and b["dp_p0_1"] == pytest.approx(-0.1)
    assert b["dp_rms"] == pytest.approx(0.1) and b["dp_rms_se"] == 0.0 and math.isnan(b["same_top_se"])


@pytest.fixture(scope="module")
def nudged_dir(tmp_path_factory, tiny_model_dir):
    return perturbed_copy(tiny_model_dir, tmp_path_factory.mktemp("nudged"), seed=5)


def test_two_tiny_models_through_the_plugin(tmp_path, tiny_model_dir, nudged_dir):
    cfg = write_config(tmp_path, [{"name": "ref", "path": str(tiny_model_dir)},
                                  {"name": "cand", "path": str(nudged_dir), "compare_to": "ref"}],
                       ["The cat sat on the mat, " * 8, "A second text, with numbers 12 and 345.", "x y z"],
                       name="kl", dataset="toy", eval={"window": 16, "stride": 8, "batch_size": 4, "device": "cpu"},
                       output={"plots": False})
    assert main(["run", str(cfg), "--quiet"]) == 0
    (f,) = (tmp_path / "results" / "kl").glob("*/results.json")
    row = next(r for r in json.loads(f.read_text())["results"] if r["model"] == "cand")
    b, kl = row["kl_llama"], row["kl"]
    assert "llama" not in kl and b["count"] == kl["tokens"] > 100
    assert b["kld_mean"] == kl["per_temperature"][0]["kl_ref_cand_nats"] > 0
    assert b["ppl_q"] == pytest.approx(kl["ppl_cand"], rel=1e-12)
    assert b["ppl_base"] == pytest.approx(kl["ppl_ref"], rel=1e-12)
    assert b["same_top"] == kl["same_top1"] and b["dp_mean"] == pytest.approx(kl["delta_p_mean"], rel=1e-12)
    assert b["kld_min"] <= b["kld_p1"] <= b["kld_median"] <= b["kld_p99"] <= b["kld_max"]
    assert b["dp_min"] <= b["dp_p25"] <= b["dp_median"] <= b["dp_p75"] <= b["dp_max"]
    assert b["ln_ppl_ratio_se"] > 0 and 0 < b["cor_ln_ppl"] <= 1
    summary = next((tmp_path / "results" / "kl").glob("*/summary.md")).read_text()
    for line in ("====== Perplexity statistics ======", "====== KL divergence statistics ======",
                 "====== Token probability statistics ======", f"Mean    KLD: {b['kld_mean']:10.6f}",
                 f"RMS Δp    : {100 * b['dp_rms']:6.3f}", f"Same top p: {100 * b['same_top']:6.3f}"):
        assert line in summary, line


def test_histograms_merge_exactly_across_chunkings_and_checkpoints():
    """Counts add: any split of the rows (batches, documents, ranks) gives the same percentiles, bit for bit, and a
    checkpointed part's histograms come back unchanged."""
    g = torch.Generator().manual_seed(9)
    zr = torch.randn(300, 64, generator=g)
    zc = zr + 0.3 * torch.randn(300, 64, generator=g)
    t = torch.randint(0, 64, (300,), generator=g)
    one, many = summary_by_chunks(zr, zc, t, parts=1)["llama"], summary_by_chunks(zr, zc, t, parts=7)["llama"]
    for k in FIELDS:
        if "_p" in k or k.endswith(("median", "max", "min")) or k == "max_abs_dp":
            assert one[k] == many[k], k
        else:
            assert one[k] == pytest.approx(many[k], rel=1e-12, abs=1e-15), k
    c = np.bincount(DP_BINS.index(zr[:, 0].double() / 10).numpy(), minlength=DP_BINS.size)
    assert (_unpack_counts(_pack_counts(c)) == c).all() and c.sum() == 300
