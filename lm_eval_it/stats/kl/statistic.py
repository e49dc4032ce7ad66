"""KL against a reference model as a streaming statistic (the reference scores the same chunk).

Per row it reduces forward KL(p_ref ‖ p_cand) and reverse KL(p_cand ‖ p_ref) at
every T, top-1 agreement, Δp = p_cand(y) − p_ref(y) and both NLLs (see
:func:`lm_eval_it.stats.kl.divergence.kl_stats`) into sums, sums of squares (standard errors),
cross products (the perplexity ratio's correlated error), exact minimum and
maximum, and fixed-bin histograms for quantiles:

* KL: 0 and then 100 log-spaced bins per decade on [1e-10, 1e3] nats; a
  quantile is interpolated inside the bin that holds it, so its relative error
  is below 10^(1/100) − 1 = 2.3% (absolute below 1e-10 near 0); max and min are exact;
* Δp: 2000 equal bins on [−1, 1], error below 0.001.

It also reduces what ``llama-perplexity --kl-divergence`` reports (Σ Δp⁴ and two finer
histograms, :mod:`lm_eval_it.stats.kl.histogram`): ``summarize`` returns them under
``llama`` (:func:`lm_eval_it.stats.kl.llama.llama_kl`), which the plug-in writes as ``kl_llama``.

Example::

    stat = KLStats([1.0, 2.0])      # chunk.reference holds the reference logits
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lm_eval_it.stats.base import Count, Extreme, Statistic, Sum
from lm_eval_it.stats.kl.divergence import KL_QUANTILES, kl_stats
from lm_eval_it.stats.kl.histogram import DP_BINS, KLD_BINS
from lm_eval_it.stats.kl.llama import llama_kl
from lm_eval_it.stats.temperature.sweep import hist_quantiles

LN2 = math.log(2.0)
KL_EDGES = np.concatenate([[0.0], np.logspace(-10, 3, 1301)])
DP_EDGES = np.linspace(-1.0, 1.0, 2001)
SCALARS = ("agree", "dp", "dp_sq", "nll_ref", "nll_cand", "diff_sq", "cand_sq", "ref_sq", "cand_ref", "dp4")


def kl_bins(x: torch.Tensor) -> torch.Tensor:
    """Histogram bin of each KL value on :data:`KL_EDGES` (values past 1e3 go to the last bin)."""
    e = torch.from_numpy(KL_EDGES[1:-1]).to(x.device, torch.float64)
    return torch.bucketize(x.double().contiguous(), e, right=True)


def _se(s: float, sq: float, n: int) -> float:
    if n < 2:
        return math.nan
    var = max(sq - s * s / n, 0.0) / (n - 1)
    return math.sqrt(var / n)


def _quantiles(counts, edges, lo: float, hi: float) -> dict:
    if counts.sum() == 0:
        return {}
    qs = [q for q in KL_QUANTILES if 0 < q < 1]
    vals = dict(zip(qs, hist_quantiles(counts, edges, qs)))
    out = {}
    for q in KL_QUANTILES:
        key = "max" if q == 1 else "min" if q == 0 else f"p{q * 100:g}"
        out[key] = float(hi if q == 1 else lo if q == 0 else min(max(vals[q], lo), hi))
    return out


class KLStats(Statistic):
    name = "kl"

    def __init__(self, temperatures: list[float]):
        self.temperatures = sorted(set(temperatures) | {1.0})
        self.k1 = self.temperatures.index(1.0)

    def fields(self) -> list:
        t = len(self.temperatures)
        return ([Sum(k, (t,)) for k in ("fwd", "rev", "fwd_sq", "rev_sq")] + [Sum(k) for k in SCALARS]
                + [Count("fwd_hist", (), KL_EDGES.size - 1), Count("rev_hist", (), KL_EDGES.size - 1),
                   Count("dp_hist", (), DP_EDGES.size - 1), Extreme("fwd1"), Extreme("rev1"), Extreme("dp1"),
                   Count("kld_fine", (), KLD_BINS.size), Count("dp_fine", (), DP_BINS.size)])

    def rows(self, chunk) -> dict:
        s = kl_stats(chunk.reference, chunk.logits, chunk.targets, self.temperatures)
        fwd, rev, dp = s["kl_fwd"].double(), s["kl_rev"].double(), s["dp"].double()
        c, r = s["nll_cand"].double(), s["nll_ref"].double()
        f1, r1 = fwd[:, self.k1], rev[:, self.k1]
        dp_bin = ((dp + 1.0) / 2.0 * (DP_EDGES.size - 1)).long().clamp_(0, DP_EDGES.size - 2)
        return {"fwd": fwd, "rev": rev, "fwd_sq": fwd * fwd, "rev_sq": rev * rev,
                "agree": s["agree"].double(), "dp": dp, "dp_sq": dp * dp, "nll_ref": r, "nll_cand": c,
                "diff_sq": (c - r) ** 2, "cand_sq": c * c, "ref_sq": r * r, "cand_ref": c * r,
                "fwd_hist": kl_bins(f1), "rev_hist": kl_bins(r1), "dp_hist": dp_bin,
                "fwd1": f1, "rev1": r1, "dp1": dp,
                "dp4": (dp * dp) ** 2, "kld_fine": KLD_BINS.index(f1), "dp_fine": DP_BINS.index(dp)}

    def summarize(self, totals: dict, context: dict) -> dict:
        n = int(context["tokens"])
        g = lambda k: float(totals[k])  # noqa: E731
        per_t = []
        for k, t in enumerate(self.temperatures):
            fwd, rev = float(totals["fwd"][k]), float(totals["rev"][k])
            per_t.append({"temperature": t,
                          "kl_ref_cand_nats": fwd / n, "kl_ref_cand_se": _se(fwd, float(totals["fwd_sq"][k]), n),
                          "kl_cand_ref_nats": rev / n, "kl_cand_ref_se": _se(rev, float(totals["rev_sq"][k]), n),
                          "kl_ref_cand_bits": fwd / n / LN2, "kl_cand_ref_bits": rev / n / LN2})
        p_same = g("agree") / n
        sum_c, sum_r = g("nll_cand"), g("nll_ref")
        mean_c, mean_r = sum_c / n, sum_r / n
        ppl_c, ppl_r = math.exp(mean_c), math.exp(mean_r)
        diff = sum_c - sum_r
        se_diff = _se(diff, g("diff_sq"), n)
        if n > 1:
            var_c = (g("cand_sq") - sum_c * sum_c / n) / (n - 1) / n
            var_r = (g("ref_sq") - sum_r * sum_r / n) / (n - 1) / n
            cov = (g("cand_ref") - sum_c * sum_r / n) / (n - 1) / n
            var_diff = ppl_c**2 * var_c + ppl_r**2 * var_r - 2 * ppl_c * ppl_r * cov
        else:
            var_diff = math.nan
        ext = context["extremes"]
        sums = {"count": n, "nll": sum_c, "nll2": g("cand_sq"), "nll_base": sum_r, "nll_base2": g("ref_sq"),
                "nll_nll_base": g("cand_ref"), "kld": float(totals["fwd"][self.k1]),
                "kld2": float(totals["fwd_sq"][self.k1]), "dp": g("dp"), "dp2": g("dp_sq"), "dp4": g("dp4"),
                "same_top": g("agree")}
        llama = llama_kl(sums, totals["kld_fine"], totals["dp_fine"], ext["fwd1"], ext["dp1"])
        return {
            "tokens": n,
            "per_temperature": per_t,
            "kl_ref_cand_quantiles_nats": _quantiles(totals["fwd_hist"], KL_EDGES, *ext["fwd1"]),
            "kl_cand_ref_quantiles_nats": _quantiles(totals["rev_hist"], KL_EDGES, *ext["rev1"]),
            "quantile_method": "fixed-bin histograms: KL 100 log bins per decade (relative error < 2.3%), "
                               "Δp 2000 bins on [-1, 1] (error < 0.001); max and min exact",
            "same_top1": p_same, "same_top1_se": math.sqrt(max(p_same * (1 - p_same), 0.0) / n) if n else math.nan,
            "delta_p_rms": math.sqrt(g("dp_sq") / n), "delta_p_mean": g("dp") / n,
            "delta_p_quantiles": _quantiles(totals["dp_hist"], DP_EDGES, *ext["dp1"]),
            "ppl_ref": ppl_r, "ppl_cand": ppl_c,
            "ln_ppl_ratio": diff / n, "ln_ppl_ratio_se": se_diff,
            "ppl_ratio": math.exp(diff / n), "ppl_ratio_se": math.exp(diff / n) * se_diff,
            "ppl_diff": ppl_c - ppl_r, "ppl_diff_se": math.sqrt(max(var_diff, 0.0)) if math.isfinite(var_diff) else math.nan,
            "llama": llama,
        }
