"""Uncertainty of corpus-level ratios over documents: linearised variance, Student-t interval (pure numpy).

A metric like bits per byte is a ratio of sums over documents, ``R = Σ nll / Σ bytes``.
Its interval treats the *documents* as the sample (never the tokens):

1. **Linearisation** (delta method): each document's influence on ``R`` is its residual
   ``(nll_i − R·bytes_i) / Σ bytes``; the variance is the sum of the squared residuals.
2. **Small-sample correction** (Bell–McCaffrey, as advised by Imbens & Kolesár 2016): under
   the working model "every document's bits/byte scatters around the corpus value with one
   spread", i.e. ``Var(residual_i) ∝ bytes_i²``, the variance is scaled to be unbiased and its
   Satterthwaite degrees of freedom ``df`` are computed exactly from the document sizes. One
   long document among short ones leaves few effective degrees of freedom, and the interval
   says so by widening; with equal sizes ``df = n − 1`` and this is the textbook t interval.
3. **Student-t quantile** with those ``df``: ``R ± t(0.975, df) · se``.

No resampling, no seed: the same documents always give the same interval. A paired
comparison of two models on the same documents applies the same construction to the
per-document difference of their residuals (the document-to-document variation cancels).
Documents with nothing scored (no bytes and no NLL, e.g. a one-token document under
``prefix: none``) are counted in ``documents_without_scored_tokens`` and left out.
``benchmarks/coverage.py`` measures the coverage: 96–98.5% at 5–50 documents with
WikiText-like lengths, where the percentile bootstrap this replaced gave 79–93%; the
price is width (about 2× the bootstrap's at 10 documents, 1.3× at 50).

Example::

    >>> nll = [10.0, 20.0, 30.0, 40.0]; nbytes = [10, 10, 10, 10]
    >>> lo, hi = ratio_interval(nll, nbytes)
    >>> lo < 2.5 < hi
    True
    >>> r = ratio_stats(nll, nbytes); round(r["se"], 6), r["df"]   # sd of 1, 2, 3, 4 over √4; n − 1
    (0.645497, 3.0)
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.stats.student_t import t_quantile

METHOD = "linearised_t"  # delta-method variance, Bell–McCaffrey df from document sizes, Student-t quantile
MIN_DOCUMENTS = 10  # below this no difference is called significant (intervals are still shown)
LN2 = math.log(2.0)
INTERVAL_LABEL = "95% t intervals over documents (linearised)"  # how every interval built here is described
INTERVAL_LABEL_ONE = "95% t interval over documents (linearised)"  # the same, for one value


def size_traces(sizes) -> tuple[float, float, float]:
    """``(tr S, tr K, tr K²)`` for residuals of a ratio whose denominators are ``sizes``.

    Working model: residual ``e_i ~ N(0, σ² sizes_i²)``, observed through the projection
    ``M = I − w 1ᵀ`` with ``w = sizes / Σ sizes`` (fitting the ratio removes one degree of
    freedom); ``S = diag(sizes²)``, ``K = M S Mᵀ``, so ``E[Σ ê²] = σ² tr K`` and
    ``Var(Σ ê²) = 2σ⁴ tr K²``. ``tr K²`` is exact in O(n): ``K`` is diagonal plus rank 2.
    """
    x = np.asarray(sizes, dtype=np.float64)
    s = x * x
    s1, total = float(s.sum()), float(x.sum())
    if x.size < 2 or total <= 0:
        return s1, 0.0, 0.0
    w = x / total
    tr = s1 - 2.0 * float((w * s).sum()) + float((w * w).sum()) * s1
    u = np.stack([w, s])                                     # K = diag(s) + Uᵀ C U
    c = np.array([[s1, -1.0], [-1.0, 0.0]])
    cg = c @ (u @ u.T)
    tr2 = float((s * s).sum() + 2.0 * np.trace(c @ ((u * s) @ u.T)) + np.trace(cg @ cg))
    return s1, max(tr, 0.0), max(tr2, 0.0)


def size_correction(sizes) -> tuple[float, float]:
    """``(scale, df)``: ``scale · Σ ê²`` is unbiased for ``Var(Σ e)`` under :func:`size_traces`'s
    working model, with Satterthwaite ``df = (tr K)² / tr K²`` (Bell–McCaffrey).

    Equal sizes give the textbook ``n/(n−1)`` and ``n − 1``; so does the degenerate case of one
    document holding all the size.
    """
    n = np.asarray(sizes).size
    s1, tr, tr2 = size_traces(sizes)
    if n < 2:
        raise ValueError("a variance over documents needs at least 2 documents")
    if not (tr > 1e-12 * s1 and tr2 > 0):
        return n / (n - 1), float(n - 1)
    return float(s1 / tr), float(tr * tr / tr2)


def t_interval(estimate: float, se: float, df: float, level: float = 0.95) -> tuple[float, float]:
    if df <= 0:
        raise ValueError("a t interval needs df > 0")
    q = t_quantile(0.5 + level / 2.0, df)
    return float(estimate - q * se), float(estimate + q * se)


def scored_mask(*arrays) -> np.ndarray:
    """Documents where something was scored: any non-zero value among the arrays."""
    return np.any(np.stack([np.asarray(a, dtype=np.float64) != 0 for a in arrays]), axis=0)


def ratio_stats(num, den, level: float = 0.95) -> dict:
    """``Σ num / Σ den`` with its linearised se, df and t interval (``low``/``high`` ``None`` below 2 documents).

    Documents with ``num == den == 0`` (nothing scored) are counted, not used.
    """
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    keep = scored_mask(num, den) if num.size else np.zeros(0, bool)
    num, den = num[keep], den[keep]
    out = {"estimate": None, "low": None, "high": None, "se": None, "df": None, "documents": int(num.size),
           "documents_without_scored_tokens": int((~keep).sum()), "method": METHOD, "level": level}
    total = den.sum()
    if total <= 0:
        return out
    r = num.sum() / total
    out["estimate"] = float(r)
    if num.size < 2:
        return out
    scale, df = size_correction(den)
    se = math.sqrt(scale * float(((num - r * den) ** 2).sum())) / float(total)
    out["low"], out["high"] = t_interval(r, se, df, level)
    out["se"], out["df"] = se, df
    return out


def ratio_interval(num, den, level: float = 0.95) -> tuple[float, float] | None:
    """The t interval of ``sum(num) / sum(den)`` (:func:`ratio_stats`); ``None`` with < 2 scored documents."""
    r = ratio_stats(num, den, level)
    return None if r["low"] is None else (r["low"], r["high"])


def bits_per_byte_interval(nll, nbytes, level: float = 0.95) -> tuple[float, float] | None:
    iv = ratio_interval(nll, nbytes, level)
    return None if iv is None else (iv[0] / LN2, iv[1] / LN2)


def paired_residuals(nll_a, bytes_a, nll_b, bytes_b):
    """``(Δ nats/byte, residuals in nats, sizes)`` of A − B on the same documents (all documents kept).

    Residual ``i`` is ``X·[(a_i − R_a x^a_i)/X_a − (b_i − R_b x^b_i)/X_b]`` with ``x = (x^a + x^b)/2``,
    ``X = Σ x``: with the same bytes for both models it is the residual of the per-document
    NLL difference, ``(a_i − b_i) − Δ·x_i``.
    """
    na, ba, nb, bb = (np.asarray(v, dtype=np.float64) for v in (nll_a, bytes_a, nll_b, bytes_b))
    ra, rb = na.sum() / ba.sum(), nb.sum() / bb.sum()
    x = (ba + bb) / 2.0
    z = (na - ra * ba) / ba.sum() - (nb - rb * bb) / bb.sum()
    return float(ra - rb), z * x.sum(), x


def paired_delta(nll_a, bytes_a, nll_b, bytes_b, level: float = 0.95) -> dict:
    """Δ bits per byte (A − B) on the same documents, with a paired t interval (linearised, see module doc).

    ``delta`` is NaN only when a model scored no bytes at all.
    ``significant`` is true when the interval excludes 0, and never with fewer than
    :data:`MIN_DOCUMENTS` scored documents (``few_documents`` is then true and ``significant`` ``None``).
    Also ``se`` and ``df`` (of Δ in bits/byte), ``documents`` used, ``documents_without_scored_tokens``
    (nothing scored for either model: left out), ``method``.
    """
    arrays = [np.asarray(v, dtype=np.float64) for v in (nll_a, bytes_a, nll_b, bytes_b)]
    if len({a.size for a in arrays}) > 1:
        raise ValueError("paired comparison needs the same documents for both models")
    keep = scored_mask(*arrays) if arrays[0].size else np.zeros(0, bool)
    na, ba, nb, bb = (a[keep] for a in arrays)
    n = int(keep.sum())
    out = {"delta": math.nan, "low": None, "high": None, "significant": None, "few_documents": bool(n < MIN_DOCUMENTS),
           "se": None, "df": None, "documents": n, "documents_without_scored_tokens": int((~keep).sum()),
           "method": METHOD, "level": level, "resamples": 0, "seed": None}  # no resampling; keys kept
    if ba.sum() <= 0 or bb.sum() <= 0:
        return out
    delta, e, x = paired_residuals(na, ba, nb, bb)
    out["delta"] = float(delta / LN2)
    if n < 2:
        return out
    scale, df = size_correction(x)
    se = math.sqrt(scale * float((e * e).sum())) / float(x.sum()) / LN2
    lo, hi = t_interval(out["delta"], se, df, level)
    out.update(low=lo, high=hi, se=se, df=df)
    out["significant"] = None if out["few_documents"] else bool(lo > 0 or hi < 0)
    return out


def _exp(v: float) -> float:
    return math.exp(v) if v < 709.0 else math.inf


def metric_intervals(per_document: list[dict], level: float = 0.95) -> dict:
    """95% intervals of the bits-per-unit metrics (and token perplexity) over documents.

    Keys are metric names; values are ``[low, high]``, or ``None`` with fewer than 2 documents
    that scored tokens. Added keys: ``method``, ``level``, ``documents`` (used),
    ``documents_without_scored_tokens`` (left out), ``few_documents``, and per metric ``se`` and
    ``df`` (bits per unit; token perplexity is ``exp`` of the nats/token interval). A lower end below 0
    (few, unequal documents) is cut to 0, where an NLL ends: coverage can only rise.
    """
    keys = ("bits_per_token", "token_perplexity", "bits_per_byte", "bits_per_word", "bits_per_char")
    scored = [d for d in per_document if d["tokens"] > 0]
    out: dict = dict.fromkeys(keys)
    out.update(method=METHOD, level=level, documents=len(scored), few_documents=len(scored) < MIN_DOCUMENTS,
               documents_without_scored_tokens=len(per_document) - len(scored), se={}, df={})
    nll = np.array([d["nll"] for d in scored], dtype=np.float64)
    for unit in ("token", "byte", "word", "char"):
        den = np.array([d["bytes" if unit == "byte" else unit + "s"] for d in scored], dtype=np.float64)
        r = ratio_stats(nll, den, level) if len(scored) >= 2 else {"low": None}
        if r["low"] is None:
            continue
        low = max(r["low"], 0.0)  # an NLL is never negative: the interval is cut to where the value can be
        out[f"bits_per_{unit}"] = [low / LN2, r["high"] / LN2]
        out["se"][f"bits_per_{unit}"], out["df"][f"bits_per_{unit}"] = r["se"] / LN2, r["df"]
        if unit == "token":
            out["token_perplexity"] = [_exp(low), _exp(r["high"])]
    return out
