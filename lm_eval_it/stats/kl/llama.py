"""Every statistic ``llama-perplexity --kl-divergence`` prints, by its formulas, from streamed sums and histograms.

Q is the candidate, base the reference; per scored token: nll = −log q(t),
nll_base = −log p_base(t), KLD = KL(base ‖ Q) = Σ_v p_base(v)(log p_base(v) − log q(v)),
Δp = q(t) − p_base(t), same top = (argmax q == argmax p_base). From their sums
(see :func:`llama_kl`) come llama.cpp's ``mean_and_uncertainty`` (mean; standard error
sqrt((Σx²/n − mean²)/(n − 1)), 0 unless that is > 0 and n > 10) and ``covariance``
((Σab/n − (Σa/n)(Σb/n))/(n − 1), 0 when n < 10), and from them the three blocks it
prints. Differences from llama.cpp, stated in :data:`METHOD`: KLD is exact from both
models' float32 logits (float64 over the whole vocabulary; llama.cpp stores the base's
log-probs as uint16 and drops terms with log p_base < −16), and percentiles come from
fixed histograms (:mod:`lm_eval_it.stats.kl.histogram`, error bound stated) with min,
max and every mean exact. llama.cpp prints nothing for fewer than 100 tokens; here
the numbers are given (``count`` says how many).

Example::

    >>> mean_and_uncertainty(30.0, 100.0, 10)        # n ≤ 10: no uncertainty, as llama.cpp
    (3.0, 0.0)
    >>> round(mean_and_uncertainty(22.0, 50.0, 11)[1], 6)       # sqrt((50/11 − 2²)/10)
    0.23355
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.stats.kl.histogram import DP_BINS, KLD_BINS, REL

KLD_PCT = (("p99_9", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("p10", 0.10), ("p5", 0.05),
           ("p1", 0.01), ("p0_1", 0.001))
DP_PCT = (("p99_9", 0.999), ("p99", 0.99), ("p95", 0.95), ("p90", 0.90), ("p75", 0.75), ("p25", 0.25),
          ("p10", 0.10), ("p5", 0.05), ("p1", 0.01), ("p0_1", 0.001))
_KLD_NAMES = {"p99_9": "99.9%", "p99": "99.0%", "p95": "95.0%", "p90": "90.0%", "p10": "10.0%", "p5": "5.0%",
              "p1": "1.0%", "p0_1": "0.1%"}
FIELDS = {  # result key → llama-perplexity's label (Δp as a fraction here, in % there)
    "ppl_q": "Mean PPL(Q)", "ppl_q_se": "± of Mean PPL(Q)", "ppl_base": "Mean PPL(base)",
    "ppl_base_se": "± of Mean PPL(base)", "cor_ln_ppl": "Cor(ln(PPL(Q)), ln(PPL(base))), a fraction",
    "ln_ppl_ratio": "Mean ln(PPL(Q)/PPL(base))", "ln_ppl_ratio_se": "± of Mean ln(PPL(Q)/PPL(base))",
    "ppl_ratio": "Mean PPL(Q)/PPL(base)", "ppl_ratio_se": "± of Mean PPL(Q)/PPL(base)",
    "ppl_diff": "Mean PPL(Q)-PPL(base)", "ppl_diff_se": "± of Mean PPL(Q)-PPL(base)",
    "kld_mean": "Mean KLD (nats, KL(base ‖ Q) per token)", "kld_se": "± of Mean KLD",
    "kld_max": "Maximum KLD (exact)",
    **{f"kld_{k}": f"{v} KLD" for k, v in _KLD_NAMES.items()}, "kld_median": "Median KLD",
    "kld_min": "Minimum KLD (exact)", "dp_mean": "Mean Δp = q(t) − p_base(t)", "dp_se": "± of Mean Δp",
    "dp_max": "Maximum Δp (exact)",
    **{f"dp_{k}": f"{v} Δp" for k, v in {**_KLD_NAMES, "p75": "75.0%", "p25": "25.0%"}.items()},
    "dp_median": "Median Δp", "dp_min": "Minimum Δp (exact)", "dp_rms": "RMS Δp", "dp_rms_se": "± of RMS Δp",
    "max_abs_dp": "max |Δp| (exact; llama.cpp keeps it, does not print it)",
    "same_top": "Same top p (a fraction)", "same_top_se": "± of Same top p"}
METHOD = ("llama-perplexity --kl-divergence's statistics and formulas; KLD exact from float32 logits "
          "(float64 over the whole vocabulary, no uint16 base log-probs, no log p < -16 cut); "
          f"percentiles within {REL:.1%} relative (histogram: each sorted value is read inside its bin and the exact "
          "[min, max], to 0.1% of itself or an absolute 1e-10 for KLD, 1e-7 for Δp; a Δp percentile between values "
          "of opposite sign is within 0.1% of the larger; KLD above 1e3 nats bounded only by the exact maximum), "
          "index rule as llama.cpp's; "
          "min, max, means and uncertainties exact")


def mean_and_uncertainty(s: float, s2: float, n: int) -> tuple[float, float]:
    if n < 1:
        return 0.0, 0.0
    f = s / n
    df = s2 / n - f * f
    return f, (math.sqrt(df / (n - 1)) if df > 0 and n > 10 else 0.0)


def covariance(a: float, b: float, ab: float, n: int) -> float:
    return 0.0 if n < 10 else (ab / n - (a / n) * (b / n)) / (n - 1)


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def llama_kl(s: dict, kld_counts: np.ndarray, dp_counts: np.ndarray, kld_range, dp_range) -> dict:
    """The statistics from sums ``s`` (nll, nll2, nll_base, nll_base2, nll_nll_base, kld, kld2, dp, dp2, dp4,
    same_top, count), the two histograms and the exact (min, max) of KLD and Δp. Δp is a fraction (not %)."""
    n = int(s["count"])
    lq, lb = mean_and_uncertainty(s["nll"], s["nll2"], n), mean_and_uncertainty(s["nll_base"], s["nll_base2"], n)
    cov = covariance(s["nll"], s["nll_base"], s["nll_nll_base"], n)
    ppl, ppl_b = math.exp(lq[0]), math.exp(lb[0])
    ratio_ln = lq[0] - lb[0]
    ratio_ln_se = math.sqrt(max(lq[1] ** 2 + lb[1] ** 2 - 2 * cov, 0.0))
    ppl_se, ppl_b_se = ppl * lq[1], ppl_b * lb[1]
    kld = mean_and_uncertainty(s["kld"], s["kld2"], n)
    dp = mean_and_uncertainty(s["dp"], s["dp2"], n)
    mse = mean_and_uncertainty(s["dp2"], s["dp4"], n)
    rms = math.sqrt(max(mse[0], 0.0))
    top = _div(s["same_top"], n)
    out = {"count": n, "method": METHOD,
           "ppl_q": ppl, "ppl_q_se": ppl_se, "ppl_base": ppl_b, "ppl_base_se": ppl_b_se,
           "cor_ln_ppl": _div(cov, lq[1] * lb[1]),
           "ln_ppl_ratio": ratio_ln, "ln_ppl_ratio_se": ratio_ln_se,
           "ppl_ratio": math.exp(ratio_ln), "ppl_ratio_se": math.exp(ratio_ln) * ratio_ln_se,
           "ppl_diff": ppl - ppl_b,
           "ppl_diff_se": math.sqrt(max(ppl_se**2 + ppl_b_se**2 - 2 * ppl * ppl_b * cov, 0.0)),
           "kld_mean": kld[0], "kld_se": kld[1], "kld_max": float(kld_range[1]), "kld_min": float(kld_range[0])}
    out.update({f"kld_{k}": KLD_BINS.percentile(kld_counts, f, *kld_range) for k, f in KLD_PCT})
    out["kld_median"] = KLD_BINS.median(kld_counts, *kld_range)
    out.update({"dp_mean": dp[0], "dp_se": dp[1], "dp_max": float(dp_range[1]), "dp_min": float(dp_range[0])})
    out.update({f"dp_{k}": DP_BINS.percentile(dp_counts, f, *dp_range) for k, f in DP_PCT})
    out["dp_median"] = DP_BINS.median(dp_counts, *dp_range)
    out.update({"dp_rms": rms, "dp_rms_se": 0.5 / rms * mse[1] if mse[1] else 0.0,
                "max_abs_dp": float(max(-dp_range[0], dp_range[1])) if n else math.nan,
                "same_top": top, "same_top_se": math.sqrt(max(top * (1 - top), 0.0) / (n - 1)) if n > 1 else math.nan})
    return out


def _f(x, fmt: str) -> str:
    return "nan" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, fmt)


def llama_markdown(row: dict) -> str:
    """llama-perplexity's three blocks for one model × dataset, its labels and units (Δp in %), as a code block."""
    b = row["kl_llama"]
    pm = lambda k, fmt="10.6f": f"{_f(b[k], fmt)} ± {_f(b[k + '_se'], fmt)}"  # noqa: E731
    pc = lambda x, fmt="6.3f": _f(None if x is None else 100 * x, fmt)  # noqa: E731
    lines = ["====== Perplexity statistics ======",
             f"Mean PPL(Q)                   : {pm('ppl_q')}",
             f"Mean PPL(base)                : {pm('ppl_base')}",
             f"Cor(ln(PPL(Q)), ln(PPL(base))): {pc(b['cor_ln_ppl'], '6.2f')}%",
             f"Mean ln(PPL(Q)/PPL(base))     : {pm('ln_ppl_ratio')}",
             f"Mean PPL(Q)/PPL(base)         : {pm('ppl_ratio')}",
             f"Mean PPL(Q)-PPL(base)         : {pm('ppl_diff')}", "",
             "====== KL divergence statistics ======",
             f"Mean    KLD: {_f(b['kld_mean'], '10.6f')} ± {_f(b['kld_se'], '10.6f')}",
             f"Maximum KLD: {_f(b['kld_max'], '10.6f')}"]
    names = {"p99_9": "99.9%", "p99": "99.0%", "p95": "95.0%", "p90": "90.0%", "p75": "75.0%", "p25": "25.0%",
             "p10": "10.0%", "p5": " 5.0%", "p1": " 1.0%", "p0_1": " 0.1%"}
    for k, _ in KLD_PCT[:4]:
        lines.append(f"{names[k]}   KLD: {_f(b['kld_' + k], '10.6f')}")
    lines.append(f"Median  KLD: {_f(b['kld_median'], '10.6f')}")
    for k, _ in KLD_PCT[4:]:
        lines.append(f"{names[k]}   KLD: {_f(b['kld_' + k], '10.6f')}")
    lines += [f"Minimum KLD: {_f(b['kld_min'], '10.6f')}", "", "====== Token probability statistics ======",
              f"Mean    Δp: {pc(b['dp_mean'])} ± {pc(b['dp_se'], '5.3f')} %", f"Maximum Δp: {pc(b['dp_max'])}%"]
    for k, _ in DP_PCT[:5]:
        lines.append(f"{names[k]}   Δp: {pc(b['dp_' + k])}%")
    lines.append(f"Median  Δp: {pc(b['dp_median'])}%")
    for k, _ in DP_PCT[5:]:
        lines.append(f"{names[k]}   Δp: {pc(b['dp_' + k])}%")
    lines += [f"Minimum Δp: {pc(b['dp_min'])}%", f"RMS Δp    : {pc(b['dp_rms'])} ± {pc(b['dp_rms_se'], '5.3f')} %",
              f"Same top p: {pc(b['same_top'])} ± {pc(b['same_top_se'], '5.3f')} %"]
    head = (f"#### llama-perplexity statistics · {row['model']} (Q) against {row['kl_reference']} (base)"
            f" · {row['dataset']}")
    return "\n".join([head, "", f"{b['count']} tokens; {b['method']}.", "", "```", *lines, "```", ""])
