"""Temperature sweep as a streaming statistic: entropy, NLL, calibration and the best T.

Per row and temperature (one read of the row per T with the fused kernel of
:mod:`lm_eval_it.stats.temperature.kernel`, see
:func:`lm_eval_it.stats.temperature.softmax.softmax_stats`) it sums entropy, NLL, top-1
probability and dNLL/dβ, d²NLL/dβ²; it counts the entropy into a fine
fixed-bin histogram (quantiles come from it) and the top-1 confidence into
calibration bins. At the search temperatures of :mod:`lm_eval_it.stats.temperature.best` (none
for a sweep that already spans 0.8–1.25 without wide gaps) it sums only NLL and its two
derivatives, which bracket and interpolate the best T. ``kernel``: ``auto`` (compiled where
torch.compile works, else eager), ``compiled`` (an error where it does not) or ``eager``.

Histogram quantiles: entropy is binned on ``[0, log2 V]`` in
:data:`ENTROPY_BINS` equal bins; a reported quantile is linearly interpolated
inside the bin that holds the exact one, so its error is below one bin width
(``log2 V / 520``: 0.030 bits for a 49k vocabulary).

Example::

    stat = TemperatureStats([0.5, 1.0, 2.0], vocab=49152)
    # the executor calls stat.rows(chunk) per chunk; at the end:
    summary = stat.summarize(totals, {"tokens": n, "bytes": b})
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import Count, Statistic, Sum
from lm_eval_it.stats.temperature.best import (
    best_from_points,
    label,
    search_temperatures,
    wide_bracket,
)
from lm_eval_it.stats.temperature.calibration import (
    CALIBRATED_WITHIN,
    UNDETERMINED,
    confidence_verdict,
)
from lm_eval_it.stats.temperature.kernel import compiled
from lm_eval_it.stats.temperature.softmax import LN2, QUANTILES, softmax_stats

SLOPE_RTOL = 2e-6  # a float32 row's slope E_p[d] − d_y is rounded by at most this much of |E_p[d]| + |d_y|
ENTROPY_BINS = 520  # 40 reported bins × 13
CAL_BINS = 15  # equal-width reliability bins
FINE_BINS = 1000  # confidence histogram behind the equal-mass ECE


def hist_quantiles(counts: np.ndarray, edges: np.ndarray, qs) -> list[float]:
    """Quantiles of binned data (inverted-CDF definition), linear inside the bin that holds each: the error
    against the exact inverted-CDF quantile is at most one bin width (q = 0 included).

    >>> hist_quantiles(np.array([0, 4, 0, 0]), np.array([0.0, 1, 2, 3, 4]), [0.5])
    [1.5]
    """
    n = counts.sum()
    if n == 0:
        return [math.nan] * len(qs)
    cum = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for q in qs:
        target = q * n
        if target <= 0:  # q = 0: the minimum lies in the first non-empty bin, not necessarily in bin 0
            k = int(np.flatnonzero(counts)[0])
        else:
            k = int(np.clip(np.searchsorted(cum, target, side="left") - 1, 0, counts.size - 1))
        inside = (target - cum[k]) / counts[k] if counts[k] else 0.0
        out.append(float(edges[k] + inside * (edges[k + 1] - edges[k])))
    return out


def calibration_from_bins(n: np.ndarray, sums: np.ndarray, fine: np.ndarray, ent_sum: float, nll_sum: float,
                          tokens: int, per_document: dict | None = None) -> dict:
    """Calibration at one T from 15 equal-width bins (count, Σ confidence, Σ correct) and the fine histogram.

    ``per_document`` (from :func:`lm_eval_it.stats.temperature.calibration.confidence_verdict`) carries the intervals over
    documents and the verdict (``direction``); without it the verdict is "not distinguishable".
    """
    total = max(int(n.sum()), 1)
    conf, corr = sums[:, 0], sums[:, 1]
    ece_w = float(sum(abs(corr[b] - conf[b]) for b in range(CAL_BINS) if n[b])) / total
    gap = (ent_sum - nll_sum) / max(tokens, 1) / LN2
    doc = per_document or {"accuracy_minus_confidence": float((corr.sum() - conf.sum()) / total),
                           "accuracy_minus_confidence_interval": None, "ece_equal_width_interval": None,
                           "verdict": UNDETERMINED, "documents": None, "calibrated_within": CALIBRATED_WITHIN}
    return {
        "ece_equal_width": round(ece_w, 12),
        "ece_equal_mass": round(_ece_mass(fine), 12),
        "ece_equal_mass_method": f"approximate: 15 groups of whole bins of a {FINE_BINS}-bin confidence histogram "
                                 "(a bin is not split, so groups are only nearly equal in count), bin-centre "
                                 "confidence; the equal-width ECE is exact",
        "top1_accuracy": float(corr.sum() / total),
        "mean_top1_prob": float(conf.sum() / total),
        "entropy_minus_nll_bits": gap,
        "entropy_minus_nll_note": "mean entropy − mean NLL, bits/token: 0 at the NLL-optimal T for any model "
                                  "(H − NLL = −β·dNLL/dβ), so not a calibration test",
        "direction": doc["verdict"],
        "direction_method": "top-1 accuracy − mean top-1 confidence and the equal-width ECE, 95% intervals over "
                            f"documents; calibrated only when both lie within {CALIBRATED_WITHIN}",
        **{k: v for k, v in doc.items() if k != "verdict"},
        "reliability": [{"low": b / CAL_BINS, "high": (b + 1) / CAL_BINS, "count": int(n[b]),
                         "confidence": float(conf[b] / n[b]) if n[b] else None,
                         "accuracy": float(corr[b] / n[b]) if n[b] else None} for b in range(CAL_BINS)],
    }


def _ece_mass(fine: np.ndarray) -> float:
    """Equal-mass ECE from (bin, correct) counts: whole fine bins grouped into 15 groups of about N/15."""
    counts, right = fine.reshape(FINE_BINS, 2).sum(1), fine.reshape(FINE_BINS, 2)[:, 1]
    n = counts.sum()
    if n == 0:
        return math.nan
    centres = (np.arange(FINE_BINS) + 0.5) / FINE_BINS
    mid = np.cumsum(counts) - counts / 2.0
    group = np.minimum((mid * CAL_BINS // n).astype(int), CAL_BINS - 1)
    total = 0.0
    for g in range(CAL_BINS):
        sel = group == g
        c = counts[sel].sum()
        if c:
            total += abs(right[sel].sum() - (counts[sel] * centres[sel]).sum())
    return total / n


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


class TemperatureStats(Statistic):
    name = "temperature"

    def __init__(self, temperatures: list[float], vocab: int, search: bool = True, kernel: str = "auto"):
        self.temperatures = list(temperatures)
        self.search = search_temperatures(self.temperatures) if search else []
        self.vocab = vocab
        self.top = math.log2(vocab) if vocab > 1 else 1.0
        self.kernel = kernel
        self.kernels_run: set[str] = set()  # which kernel computed the rows: "compiled", "eager"

    def _kernel(self, device: torch.device):
        """The compiled kernel for this device, ``None`` for the eager one (``compiled`` and none: an error)."""
        if self.kernel == "eager":
            return None
        k = compiled(device.type)
        if k is None and self.kernel == "compiled":
            raise UserError(f"eval.sweep_kernel: compiled, but torch.compile cannot build the sweep's kernel on "
                            f"{device.type} here (see the warning above); use auto or eager")
        return k

    def fields(self) -> list:
        t, s = len(self.temperatures), len(self.search)
        out = [Sum(k, (t,)) for k in ("entropy", "nll", "top1_prob", "d1", "d2", "d1_abs")]
        # calibration bins are also kept per document (Σ confidence, Σ correct per bin): the intervals of the
        # calibration verdict resample documents
        out += [Sum("top1_correct"), Sum("calibration", (t, CAL_BINS, 2), per_document=True),
                Sum("doc_tokens", (), per_document=True),
                Count("entropy_hist", (t,), ENTROPY_BINS), Count("calibration_n", (t,), CAL_BINS),
                Count("confidence_fine", (t,), 2 * FINE_BINS)]
        if s:
            out += [Sum(k, (s,)) for k in ("search_nll", "search_d1", "search_d2", "search_d1_abs")]
        return out

    def rows(self, chunk) -> dict:
        kernel = self._kernel(chunk.logits.device)
        both = softmax_stats(chunk.logits, chunk.targets, self.temperatures + self.search, derivatives=True,
                             kernel=kernel)
        ran = "compiled" if kernel is not None and compiled(chunk.logits.device.type) is not None else "eager"
        if ran == "eager" and self.kernel == "compiled":
            self._kernel(chunk.logits.device)  # the compiled kernel failed on this chunk: say so
        self.kernels_run.add(ran)
        t = len(self.temperatures)
        st = {k: v[:, :t] for k, v in both.items() if v.dim() == 2}
        prob, correct = st["top1_prob"], both["top1_correct"]
        cal_bin = (prob * CAL_BINS).long().clamp_(0, CAL_BINS - 1)
        cal = torch.zeros(prob.shape[0], t, CAL_BINS, 2)
        cal[..., 0].scatter_(2, cal_bin.unsqueeze(-1), prob.unsqueeze(-1))
        cal[..., 1].scatter_(2, cal_bin.unsqueeze(-1), correct.float().unsqueeze(-1).expand(-1, t).unsqueeze(-1))
        fine = (prob * FINE_BINS).long().clamp_(0, FINE_BINS - 1) * 2 + correct.long().unsqueeze(-1)
        ent_bin = (st["entropy"] / LN2 / self.top * ENTROPY_BINS).long().clamp_(0, ENTROPY_BINS - 1)
        out = {k: st[k] for k in ("entropy", "nll", "top1_prob", "d1", "d2")}
        # |E_p[d]| + |d_y| per row: what the rounding of a row's slope is proportional to (slope_error)
        gap = both["target_gap"].to(both["d1"].dtype).abs().unsqueeze(-1)
        size = (both["d1"] + both["target_gap"].to(both["d1"].dtype).unsqueeze(-1)).abs() + gap
        out["d1_abs"] = size[:, :t]
        out.update(top1_correct=correct.float(), calibration=cal, doc_tokens=torch.ones(prob.shape[0]),
                   entropy_hist=ent_bin,
                   calibration_n=cal_bin, confidence_fine=fine)
        if self.search:
            out.update(search_nll=both["nll"][:, t:], search_d1=both["d1"][:, t:], search_d2=both["d2"][:, t:],
                       search_d1_abs=size[:, t:])
        return out

    def summarize(self, totals: dict, context: dict) -> dict:
        n, n_bytes = context["tokens"], context["bytes"]
        temps = self.temperatures
        edges = np.linspace(0.0, self.top, ENTROPY_BINS + 1)
        per_t = []
        for k, t in enumerate(temps):
            hist = totals["entropy_hist"][k]
            e_sum, n_sum = float(totals["entropy"][k]), float(totals["nll"][k])
            per_t.append({
                "temperature": t,
                "entropy_bits_per_token": e_sum / n / LN2, "entropy_bits_per_byte": e_sum / n_bytes / LN2,
                "nll_bits_per_token": n_sum / n / LN2, "nll_bits_per_byte": n_sum / n_bytes / LN2,
                "mean_top1_prob": float(totals["top1_prob"][k]) / n,
                "entropy_quantiles_bits": {f"p{int(q * 100)}": v
                                           for q, v in zip(QUANTILES, hist_quantiles(hist, edges, QUANTILES))},
                "entropy_histogram": {"edges_bits": edges[::13].tolist(),
                                      "counts": hist.reshape(40, 13).sum(1).tolist()},
            })
        docs = context.get("per_document") or {}

        def cal(k: int) -> dict:
            verdict = None
            if "calibration" in docs and "doc_tokens" in docs:
                per_bin = docs["calibration"][:, k]
                verdict = confidence_verdict(per_bin[..., 1] - per_bin[..., 0], docs["doc_tokens"])
            return calibration_from_bins(totals["calibration_n"][k], totals["calibration"][k],
                                         totals["confidence_fine"][k], float(totals["entropy"][k]),
                                         float(totals["nll"][k]), n, verdict)
        best = self.best(totals, context.get("refined"))
        best["passes"] = context.get("refine_passes", 0)
        return {"temperatures": list(temps), "search_temperatures": list(self.search),
                "kernel": "+".join(sorted(self.kernels_run)) or None, "tokens": n, "bytes": n_bytes,
                "per_temperature": per_t,
                "best": self._best_block(best, cal, n, n_bytes),
                "calibration_T1": cal(temps.index(1.0)) if 1.0 in temps else None}

    def columns(self, rows: dict, mask: np.ndarray) -> dict:
        """Per-token output: entropy and NLL at every swept T (``entropy_T0.5``, ``nll_T0.5``, ...)."""
        ent, tn = np.asarray(rows["entropy"])[mask], np.asarray(rows["nll"])[mask]
        out = {}
        for k, t in enumerate(self.temperatures):
            out[f"entropy_T{t:g}"] = ent[:, k].astype(np.float32)
            out[f"nll_T{t:g}"] = tn[:, k].astype(np.float32)
        return out

    def points(self, totals: dict, refined: list | None = None) -> tuple:
        temps = list(self.temperatures) + list(self.search)
        f = list(totals["nll"]) + list(totals.get("search_nll", []))
        g = list(totals["d1"]) + list(totals.get("search_d1", []))
        h = list(totals["d2"]) + list(totals.get("search_d2", []))
        for t, pf, pg, ph in refined or []:
            temps.append(t); f.append(pf); g.append(pg); h.append(ph)
        return [1.0 / t for t in temps], f, g, h

    def slope_errors(self, totals: dict, refined: list | None = None) -> list:
        """A bound on each point's summed-slope rounding: :data:`SLOPE_RTOL` of Σ(|E_p[d]| + |d_y|) for the
        float32 rows (none recorded: 0); the float64 refinement points' rounding is negligible (0)."""
        size = list(totals.get("d1_abs", [0.0] * len(self.temperatures)))
        size += list(totals.get("search_d1_abs", [0.0] * len(self.search)))
        return [SLOPE_RTOL * float(x) for x in size] + [0.0] * len(refined or [])

    def best(self, totals: dict, refined: list | None = None) -> dict:
        return best_from_points(*self.points(totals, refined), slope_error=self.slope_errors(totals, refined))

    def _best_block(self, best: dict, cal, n: int, n_bytes: int) -> dict:
        """The results.json ``best`` block; ``cal(k)`` is the calibration at swept temperature ``k``."""
        t = best["temperature"]
        nll = best["nll_sum"]
        # calibration at the swept T nearest to the best one (in β)
        ref_t = t if t is not None else (1.0 / (1.0 / min(best["bracket_temperatures"])))
        k = int(np.argmin([abs(1.0 / s - 1.0 / ref_t) for s in self.temperatures]))
        per_tok = [v / n / LN2 for v in best["nll_interval"]]
        # at the minimiser dNLL/dβ = 0 ⇔ Σ entropy = Σ NLL exactly, so the entropy shares the NLL's interval
        # (only where the slope changes sign: beyond the range there is no interior minimiser)
        interior = t is not None
        out = {"temperature": t, "exact": best["exact"], "method": best["method"], "label": label(best),
               "bracket_temperatures": best["bracket_temperatures"],
               "error_estimate_temperature": best["error_estimate_temperature"],
               "evaluations": best.get("passes", 0),
               "nll_bits_per_token": nll / n / LN2, "nll_bits_per_byte": nll / n_bytes / LN2,
               "entropy_bits_per_token": nll / n / LN2 if interior else None,
               "calibration": cal(k), "calibration_at_temperature": self.temperatures[k],
               "bound": "convexity", "temperature_interval": best["temperature_interval"],
               "nll_bits_per_token_interval": per_tok,
               "nll_bits_per_byte_interval": [v / n_bytes / LN2 for v in best["nll_interval"]],
               "entropy_bits_per_token_interval": per_tok if interior else None,
               "nll_measured_at_temperature": best["nll_upper_at_temperature"],
               "wide_bracket": wide_bracket(best), "newton_temperature": _finite(best.get("newton_temperature"))}
        if "nll_estimate_sum" in best:
            out["nll_bits_per_token_estimate"] = best["nll_estimate_sum"] / n / LN2
        return out
