"""Calibration verdicts from confidence against accuracy, with intervals over documents (pure numpy).

Calibration means that the top-1 confidence matches how often the top-1 token is right. From
each document's sums (tokens, and per equal-width confidence bin Σ(correct − confidence)):

* ``accuracy_minus_confidence`` — top-1 accuracy − mean top-1 confidence, a ratio of sums over
  documents, with the 95% interval of :func:`lm_eval_it.stats.intervals.ratio_interval`;
* ``ece_equal_width_interval`` — a 95% percentile interval of the equal-width ECE
  (``Σ_bins |Σ correct − Σ confidence| / N``) from a percentile bootstrap over documents
  (:func:`resample_weights`, 2000 resamples, seed 1234; the ECE is a sum of absolute values, not
  a smooth ratio, so it keeps the bootstrap, not the linearised t interval); the ECE is biased
  upwards at small counts, so this interval leans high, which only makes a "calibrated" verdict harder to reach.
  It is the spread of the *estimate*, not a confidence interval for the true ECE (a true ECE of 0 lies
  below every estimate), and the report labels it so;
* ``verdict`` — ``calibrated`` only when that interval and the whole ECE interval lie within
  :data:`CALIBRATED_WITHIN` (an equivalence test: a tiny offset, even a significant one, is
  calibrated within it); else ``over-confident`` / ``under-confident`` when the accuracy −
  confidence interval excludes 0; else :data:`NO_NET_DIRECTION` when that interval lies within the
  tolerance but the ECE interval does not (bins that err both ways, or an ECE still inflated by
  few tokens per bin: the ECE's upward bias means its interval can show calibration, never
  disprove it); otherwise :data:`UNDETERMINED` (also with fewer than 2 documents).

Mean entropy − mean NLL is *not* a calibration test: it is exactly 0 at the NLL-optimal T for
any model (``H − NLL = −β·dNLL/dβ``); the sweep reports it under its own name.

Example::

    >>> import numpy as np
    >>> tokens = np.full(20, 100.0); bins = np.zeros((20, 15)); bins[:, 9] = 30.0   # 30% more often right
    >>> confidence_verdict(bins, tokens)["verdict"]
    'under-confident'
"""

from __future__ import annotations

import numpy as np

from lm_eval_it.stats.intervals import ratio_interval

CALIBRATED_WITHIN = 0.02  # |accuracy − confidence| and the ECE both at most this (95%) to say "calibrated"
UNDETERMINED = "not distinguishable at this sample size"
NO_NET_DIRECTION = f"no net over- or under-confidence; ECE not shown within {CALIBRATED_WITHIN}"
DEFAULT_RESAMPLES = 2000  # the ECE's document bootstrap (the only bootstrap left in lm_eval_it)
DEFAULT_SEED = 1234


def resample_weights(n_docs: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``resamples × n_docs`` counts: how often each document is drawn in each resample (document bootstrap)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=resamples).astype(np.float64)


def ece_interval(bin_gap: np.ndarray, tokens: np.ndarray, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, level: float = 0.95) -> list[float] | None:
    """Percentile-bootstrap interval of the equal-width ECE over document resamples; ``None`` with < 2 documents.

    ``bin_gap``: documents × bins of Σ(correct − confidence); ``tokens``: each document's token count.
    """
    if tokens.size < 2:
        return None
    w = resample_weights(tokens.size, resamples, seed)
    n = np.maximum(w @ tokens, 1.0)  # a resample of empty documents has ECE 0 over 0 tokens: counted as 0
    ece = np.abs(w @ bin_gap).sum(axis=1) / n
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(ece, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def verdict(gap_interval, ece_iv) -> str:
    """The calibration verdict from the two 95% intervals (see the module docstring)."""
    if gap_interval is None or ece_iv is None:
        return UNDETERMINED
    lo, hi = gap_interval
    if max(-lo, hi, ece_iv[1]) <= CALIBRATED_WITHIN:  # a real but tiny offset is still calibrated "within"
        return "calibrated"
    if hi < 0:
        return "over-confident"
    if lo > 0:
        return "under-confident"
    if max(-lo, hi) <= CALIBRATED_WITHIN:  # on average within the tolerance, but not bin by bin
        return NO_NET_DIRECTION
    return UNDETERMINED


def confidence_verdict(bin_gap, tokens) -> dict:
    """Accuracy − confidence with its interval, the ECE interval and the verdict, from per-document sums.

    Documents with no scored tokens carry nothing and are left out.
    """
    bin_gap, tokens = np.asarray(bin_gap, dtype=np.float64), np.asarray(tokens, dtype=np.float64)
    keep = tokens > 0
    bin_gap, tokens = bin_gap[keep], tokens[keep]
    gap = bin_gap.sum(axis=1)
    iv = ratio_interval(gap, tokens) if tokens.size >= 2 else None
    ece_iv = ece_interval(bin_gap, tokens)
    return {"accuracy_minus_confidence": float(gap.sum() / tokens.sum()) if tokens.sum() else None,
            "accuracy_minus_confidence_interval": list(iv) if iv is not None else None,
            "ece_equal_width_interval": ece_iv, "verdict": verdict(iv, ece_iv), "documents": int(tokens.size),
            "calibrated_within": CALIBRATED_WITHIN}
