"""Temperature sweep results for one model × dataset, summed then divided.

From the per-token statistics the scorer computed in the scoring pass
(``T_entropy``, ``T_nll``, ``T_top1_prob``, ``T_top1_correct``), this builds:

* per T: mean next-token entropy and NLL, in bits per token and bits per byte,
  mean top-1 probability, and quantiles of the per-token entropy;
* the best temperature (minimum NLL): bracketed by the swept points, started
  from the cubic through their exact values and slopes, and finished by Newton
  steps on β = 1/T over the stored hidden states (exact, not a grid);
* calibration at T = 1 and at the best T: ECE over top-1 confidence (15
  equal-width and 15 equal-mass bins), reliability bins, and mean entropy
  minus mean NLL (negative: over-confident; positive: under-confident).

Example::

    summary = summarize_sweep(scores, n_bytes, [0.5, 1.0, 2.0], scorer)
    summary["best"]["temperature"], summary["per_temperature"][1]["nll_bits_per_token"]
"""

from __future__ import annotations

import math

import numpy as np

from .scoring import concat_extra
from .temperature import LN2, QUANTILES, cubic_minimizer, ece, minimize_convex, reliability


def calibration(top1_prob: np.ndarray, correct: np.ndarray, entropy_nats: np.ndarray, nll_nats: np.ndarray) -> dict:
    n = max(1, nll_nats.size)
    gap = (float(np.sum(entropy_nats, dtype=np.float64)) - float(np.sum(nll_nats, dtype=np.float64))) / n / LN2
    return {
        "ece_equal_width": ece(top1_prob, correct, 15, "width"),
        "ece_equal_mass": ece(top1_prob, correct, 15, "mass"),
        "top1_accuracy": float(np.mean(correct)) if correct.size else float("nan"),
        "mean_top1_prob": float(np.mean(top1_prob, dtype=np.float64)) if top1_prob.size else float("nan"),
        "entropy_minus_nll_bits": gap,
        # |gap| below 1e-4 bits is calibrated (at the best T the two are equal, exactly: dNLL/dβ = 0 there)
        "direction": "over-confident" if gap < -1e-4 else "under-confident" if gap > 1e-4 else "calibrated",
        "reliability": reliability(top1_prob, correct, 15),
    }


def best_temperature(scorer, hidden: np.ndarray, targets: np.ndarray, temperatures, sums: dict) -> dict:
    """Exact minimiser of total NLL over T.

    The scoring pass gave the exact total NLL and its slope in β = 1/T at every swept T.
    The minimum is bracketed by the two swept points where the slope changes sign; the
    cubic through their values and slopes gives a start within ~1e-4, and Newton steps
    on the stored hidden states (one LM-head pass each) finish it to 1e-7 in β.
    """
    pts = sorted((1.0 / t, f, g) for t, f, g in zip(temperatures, sums["nll"], sums["d1"]))
    k = next((i for i in range(1, len(pts)) if pts[i - 1][2] < 0 <= pts[i][2]), None)
    if k is None:  # the minimum lies beyond the sweep: search outward from its edge
        edge = pts[0] if pts[0][2] >= 0 else pts[-1]
        lo, hi, x0 = (edge[0] / 8, edge[0], edge[0]) if edge is pts[0] else (edge[0], edge[0] * 8, edge[0])
    else:
        (a, fa, ga), (b, fb, gb) = pts[k - 1], pts[k]
        lo, hi, x0 = a, b, cubic_minimizer(a, fa, ga, b, fb, gb)
    last: dict = {}

    def fn(beta: float):
        s = scorer.head_stats(hidden, targets, [1.0 / beta], derivatives=True)
        last.update(beta=beta, stats=s)
        return (float(np.sum(s["nll"], dtype=np.float64)), float(np.sum(s["d1"], dtype=np.float64)),
                float(np.sum(s["d2"], dtype=np.float64)))

    beta, evals = minimize_convex(fn, lo, hi, x0=x0, tol=1e-7)
    if abs(last["beta"] - beta) > 1e-6 * beta:  # the answer moved after the last evaluation: evaluate it
        fn(beta)
        evals += 1
    stats = last["stats"]
    return {"temperature": 1.0 / last["beta"], "exact": True, "evaluations": evals,
            "entropy": stats["entropy"][:, 0], "nll": stats["nll"][:, 0], "top1_prob": stats["top1_prob"][:, 0]}


def summarize_sweep(scores, n_bytes: int, temperatures: list[float], scorer=None, vocab: int | None = None) -> dict:
    ent, nll = concat_extra(scores, "T_entropy"), concat_extra(scores, "T_nll")
    prob, correct = concat_extra(scores, "T_top1_prob"), concat_extra(scores, "T_top1_correct").astype(bool)
    n = nll.shape[0]
    top = math.log2(vocab) if vocab else float(np.max(ent, initial=1.0) / LN2)
    edges = np.linspace(0.0, top, 41)
    per_t = []
    for k, t in enumerate(temperatures):
        e_sum, n_sum = float(np.sum(ent[:, k], dtype=np.float64)), float(np.sum(nll[:, k], dtype=np.float64))
        qs = np.quantile(ent[:, k] / LN2, QUANTILES) if n else [math.nan] * len(QUANTILES)
        per_t.append({
            "temperature": t,
            "entropy_bits_per_token": e_sum / n / LN2, "entropy_bits_per_byte": e_sum / n_bytes / LN2,
            "nll_bits_per_token": n_sum / n / LN2, "nll_bits_per_byte": n_sum / n_bytes / LN2,
            "mean_top1_prob": float(np.mean(prob[:, k], dtype=np.float64)),
            "entropy_quantiles_bits": {f"p{int(q * 100)}": float(v) for q, v in zip(QUANTILES, qs)},
            "entropy_histogram": {"edges_bits": edges.tolist(),
                                  "counts": np.histogram(np.clip(ent[:, k] / LN2, 0, top), edges)[0].tolist()},
        })
    nll_sums = [float(np.sum(nll[:, k], dtype=np.float64)) for k in range(len(temperatures))]
    hidden, targets, d1 = concat_extra(scores, "hidden"), concat_extra(scores, "target"), concat_extra(scores, "T_d1")
    if scorer is not None and hidden.size and d1.size:
        slopes = [float(np.sum(d1[:, k], dtype=np.float64)) for k in range(len(temperatures))]
        best = best_temperature(scorer, hidden.astype(np.float32), targets.astype(np.int64), temperatures,
                                {"nll": nll_sums, "d1": slopes})
    else:  # no stored hidden states (full-logits fallback): the best grid point, flagged as such
        k = int(np.argmin(nll_sums))
        best = {"temperature": temperatures[k], "exact": False, "evaluations": 0,
                "entropy": ent[:, k], "nll": nll[:, k], "top1_prob": prob[:, k]}
    out_best = {
        "temperature": best["temperature"], "exact": best["exact"], "evaluations": best["evaluations"],
        "nll_bits_per_token": float(np.sum(best["nll"], dtype=np.float64)) / n / LN2,
        "nll_bits_per_byte": float(np.sum(best["nll"], dtype=np.float64)) / n_bytes / LN2,
        "entropy_bits_per_token": float(np.sum(best["entropy"], dtype=np.float64)) / n / LN2,
        "calibration": calibration(best["top1_prob"], correct, best["entropy"], best["nll"]),
    }
    at_one = None
    if 1.0 in temperatures:
        k = temperatures.index(1.0)
        at_one = calibration(prob[:, k], correct, ent[:, k], nll[:, k])
    return {"temperatures": list(temperatures), "tokens": n, "bytes": n_bytes, "per_temperature": per_t,
            "best": out_best, "calibration_T1": at_one}
