"""Uncertainty of corpus-level ratios by resampling documents (pure numpy).

A metric like bits per byte is a ratio of sums over documents, so its interval
comes from resampling *documents* with replacement and recomputing the ratio
of sums in each resample (never averaging per-document ratios). Comparisons
between models on the same documents are **paired**: each resample applies the
same document weights to both models, which cancels the variation that comes
from which documents happened to be in the set.

Example::

    >>> nll = [10.0, 20.0, 30.0, 40.0]; nbytes = [10, 10, 10, 10]
    >>> lo, hi = ratio_interval(nll, nbytes, resamples=2000, seed=0)
    >>> lo < 2.5 < hi
    True
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 1234
MIN_DOCUMENTS = 10  # below this a bootstrap over documents is too rough to call a difference significant
LN2 = math.log(2.0)


def resample_weights(n_docs: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """``resamples × n_docs`` counts: how often each document is drawn in each resample."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_docs, np.full(n_docs, 1.0 / n_docs), size=resamples).astype(np.float64)


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def ratio_interval(num, den, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                   level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``sum(num) / sum(den)``; ``None`` with < 2 documents."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if num.size < 2:
        return None
    w = resample_weights(num.size, resamples, seed)
    return _interval((w @ num) / (w @ den), level)


def bits_per_byte_interval(nll, nbytes, **kw) -> tuple[float, float] | None:
    iv = ratio_interval(nll, nbytes, **kw)
    return None if iv is None else (iv[0] / LN2, iv[1] / LN2)


def paired_delta(nll_a, bytes_a, nll_b, bytes_b, resamples: int = DEFAULT_RESAMPLES,
                 seed: int = DEFAULT_SEED, level: float = 0.95) -> dict:
    """Δ bits per byte (A − B) on the same documents, with a paired bootstrap interval.

    ``significant`` is true when the interval excludes 0, and never with fewer than
    :data:`MIN_DOCUMENTS` documents (``few_documents`` is then true and ``significant`` ``None``).
    """
    na, ba, nb, bb = (np.asarray(x, dtype=np.float64) for x in (nll_a, bytes_a, nll_b, bytes_b))
    if not (na.size == ba.size == nb.size == bb.size):
        raise ValueError("paired comparison needs the same documents for both models")
    delta = (na.sum() / ba.sum() - nb.sum() / bb.sum()) / LN2
    if na.size < 2:
        return {"delta": float(delta), "low": None, "high": None, "significant": None, "resamples": 0}
    w = resample_weights(na.size, resamples, seed)
    samples = ((w @ na) / (w @ ba) - (w @ nb) / (w @ bb)) / LN2
    lo, hi = _interval(samples, level)
    few = bool(na.size < MIN_DOCUMENTS)
    return {"delta": float(delta), "low": lo, "high": hi, "significant": None if few else bool(lo > 0 or hi < 0),
            "few_documents": few, "resamples": resamples, "seed": seed}


def metric_intervals(per_document: list[dict], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     level: float = 0.95) -> dict:
    """95% intervals of the bits-per-unit metrics (and token perplexity) over documents.

    Keys are metric names; values are ``[low, high]``, or ``None`` with fewer than 2 documents.
    One set of document resamples serves every metric.
    """
    keys = ("bits_per_token", "token_perplexity", "bits_per_byte", "bits_per_word", "bits_per_char")
    if len(per_document) < 2:
        return dict.fromkeys(keys)
    w = resample_weights(len(per_document), resamples, seed)
    nll = w @ np.array([d["nll"] for d in per_document], dtype=np.float64)
    out: dict = {}
    for unit in ("token", "byte", "word", "char"):
        den = w @ np.array([d["bytes" if unit == "byte" else unit + "s"] for d in per_document], dtype=np.float64)
        lo, hi = _interval(nll / den, level)
        out[f"bits_per_{unit}"] = [lo / LN2, hi / LN2]
        if unit == "token":
            out["token_perplexity"] = [math.exp(lo), math.exp(hi)]
    return out
