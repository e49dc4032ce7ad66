"""Temperature sweep results for one model × dataset, summed then divided.

From the per-token statistics the scorer computed in the scoring pass
(``T_entropy``, ``T_nll``, ``T_top1_prob``, ``T_top1_correct``), this builds:

* per T: mean next-token entropy and NLL, in bits per token and bits per byte,
  mean top-1 probability, and quantiles of the per-token entropy;
* the best temperature (minimum NLL), by a Newton search on β = 1/T over the
  stored hidden states of the scored positions (exact, not a grid);
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

from .temperature import LN2, QUANTILES, ece, minimize_convex, reliability


def _concat(scores, key: str) -> np.ndarray:
    parts = [s.extra[key] for s in scores if key in s.extra]
    return np.concatenate(parts) if parts else np.zeros(0)


def calibration(top1_prob: np.ndarray, correct: np.ndarray, entropy_nats: np.ndarray, nll_nats: np.ndarray) -> dict:
    n = max(1, nll_nats.size)
    gap = (float(np.sum(entropy_nats, dtype=np.float64)) - float(np.sum(nll_nats, dtype=np.float64))) / n / LN2
    return {
        "ece_equal_width": ece(top1_prob, correct, 15, "width"),
        "ece_equal_mass": ece(top1_prob, correct, 15, "mass"),
        "top1_accuracy": float(np.mean(correct)) if correct.size else float("nan"),
        "mean_top1_prob": float(np.mean(top1_prob, dtype=np.float64)) if top1_prob.size else float("nan"),
        "entropy_minus_nll_bits": gap,
        "direction": "over-confident" if gap < 0 else "under-confident" if gap > 0 else "calibrated",
        "reliability": reliability(top1_prob, correct, 15),
    }


def best_temperature(scorer, hidden: np.ndarray, targets: np.ndarray, temperatures, nll_sums) -> dict:
    """Exact minimiser of total NLL over T, bracketed by the sweep's best grid point."""
    betas = sorted(1.0 / t for t in temperatures)
    by_beta = {1.0 / t: v for t, v in zip(temperatures, nll_sums)}
    k = int(np.argmin([by_beta[b] for b in betas]))
    lo = betas[k - 1] if k > 0 else betas[0] / 4
    hi = betas[k + 1] if k + 1 < len(betas) else betas[-1] * 4

    def fn(beta: float):
        s = scorer.head_stats(hidden, targets, [1.0 / beta], derivatives=True)
        return (float(np.sum(s["nll"], dtype=np.float64)), float(np.sum(s["d1"], dtype=np.float64)),
                float(np.sum(s["d2"], dtype=np.float64)))

    beta, evals = minimize_convex(fn, lo, hi, x0=betas[k], tol=1e-9)
    stats = scorer.head_stats(hidden, targets, [1.0 / beta])
    return {"temperature": 1.0 / beta, "exact": True, "evaluations": evals + 1,
            "entropy": stats["entropy"][:, 0], "nll": stats["nll"][:, 0], "top1_prob": stats["top1_prob"][:, 0]}


def summarize_sweep(scores, n_bytes: int, temperatures: list[float], scorer=None, vocab: int | None = None) -> dict:
    ent, nll = _concat(scores, "T_entropy"), _concat(scores, "T_nll")
    prob, correct = _concat(scores, "T_top1_prob"), _concat(scores, "T_top1_correct").astype(bool)
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
    nll_sums = [p["nll_bits_per_token"] * n * LN2 for p in per_t]
    hidden, targets = _concat(scores, "hidden"), _concat(scores, "target")
    if scorer is not None and hidden.size:
        best = best_temperature(scorer, hidden.astype(np.float32), targets.astype(np.int64), temperatures, nll_sums)
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
