"""NLL by context length, in log-spaced bins (pure numpy).

The context length of a scored token is the number of input tokens the model
saw when predicting it: input position ``p`` of a window gives length ``p + 1``
(see :mod:`lm_eval_it.engine.windows`). Lengths fall in power-of-two bins: bin ``b``
holds ``[2^b, 2^(b+1))``, for ``b = 0 .. floor(log2(window))``, so
:func:`bin_edges` is ``1, 2, 4, ...`` up to the first power of two above the
window (the last bin is cut off at the window itself).

Per document only sufficient statistics are kept: for each bin the NLL sum
(nats), the token count and the byte sum (from a per-token byte-length array),
a ``(bins, 3)`` float64 array that adds up window by window.
:func:`summarize_context` sums over documents and divides once, with 95% t
intervals over documents (linearised, :func:`lm_eval_it.stats.intervals.ratio_stats`; a
document with nothing in a bin drops out of that bin's interval, and a bin
scored by fewer than 2 documents has none; fewer than
:data:`lm_eval_it.stats.intervals.MIN_DOCUMENTS` is flagged ``few_documents``). The
information gained between two bins is ``bits/token(shorter) - bits/token(longer)``
(positive when more context helps), with the paired linearised interval of
:func:`lm_eval_it.stats.intervals.paired_delta` (tokens in place of bytes).

With ``stride < window`` a document's first window scores every length
``1 .. window``, but later windows only ``window - stride + 1 .. window``
(:func:`observed_range`, what the plan allows): the short bins see only
document openings. What ran is counted, not assumed: per bin the scored tokens
are split into those from a document's first window (:func:`first_window_rows`:
the context is the whole document before the target) and those after it, and
:func:`observed_coverage` labels each bin from those counts: ``"steady"`` (tokens
after the first window were scored in the bin, and every length of the bin is
one later windows score), ``"partial"`` (tokens after the first window were
scored, but the bin also holds lengths only first windows reach) or
``"first_window_only"`` (no token of the bin came after a first window, e.g.
when no document had a second window); ``None`` for an empty bin.

A bin with fewer than :data:`MIN_BIN_TOKENS` (100) scored tokens is flagged
``below_min_tokens``: a per-token NLL spreads widely (standard deviation 4.4
bits for SmolLM2-135M over 10,108 WikiText-2 tokens), so such a bin's
bits/token is uncertain by about 0.4 bits or more even for independent tokens,
more than the usual gain between neighbouring bins; reports grey it out rather
than read it as a finding (e.g. the bin at the window size, which holds one
position per window).

Example::

    >>> edges = bin_edges(8)
    >>> edges.tolist()
    [1, 2, 4, 8, 16]
    >>> bin_index(np.array([1, 2, 3, 4, 7, 8]), edges).tolist()
    [0, 1, 1, 2, 2, 3]
    >>> s = doc_stats(np.full(8, np.log(2)), np.arange(1, 9), np.full(8, 2), edges)
    >>> s[:, 1].tolist(), (s[:, 0] / np.log(2)).round(6).tolist()
    ([1.0, 2.0, 4.0, 1.0], [1.0, 2.0, 4.0, 1.0])
    >>> observed_range(window=8, stride=4), bin_coverage(edges, 8, 4)
    ((5, 8), ['first_window_only', 'first_window_only', 'partial', 'steady'])
    >>> observed_coverage(edges, 8, 4, first=[1, 2, 4, 1], after=[0, 0, 0, 0])   # no second window ran
    ['first_window_only', 'first_window_only', 'first_window_only', 'first_window_only']
    >>> observed_coverage(edges, 8, 4, first=[1, 2, 4, 1], after=[0, 0, 3, 4])
    ['first_window_only', 'first_window_only', 'partial', 'steady']
"""

from __future__ import annotations

import numpy as np

from lm_eval_it.stats.intervals import (
    LN2,
    METHOD,
    MIN_DOCUMENTS,
    paired_delta,
    ratio_stats,
)

NLL, TOKENS, BYTES = 0, 1, 2
MIN_BIN_TOKENS = 100  # fewer scored tokens in a bin: reported, but greyed out as too few to read (see above)


def bin_edges(window: int) -> np.ndarray:
    """``[1, 2, 4, ..., 2^B]`` with ``2^B > window``: ``B`` bins, bin ``b`` = ``[2^b, 2^(b+1))``."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    return 2 ** np.arange(int(window).bit_length() + 1, dtype=np.int64)


def bin_index(context_lengths, edges: np.ndarray) -> np.ndarray:
    """The bin of each context length (``floor(log2(length))`` for the default edges)."""
    lengths = np.asarray(context_lengths, dtype=np.int64)
    if lengths.size and (lengths.min() < edges[0] or lengths.max() >= edges[-1]):
        raise ValueError(f"context lengths must be in [{edges[0]}, {edges[-1]}), got "
                         f"{lengths.min()}..{lengths.max()}")
    return np.searchsorted(edges, lengths, side="right") - 1


def window_context_lengths(score_from: int, length: int, prefix: int = 0) -> np.ndarray:
    """Context lengths of the targets a window scores: positions ``score_from..length-1`` plus 1.

    ``prefix`` counts extra input tokens put in front of the window (e.g. a BOS
    repeated at each window start) that the model also saw.
    """
    return np.arange(score_from + 1, length + 1, dtype=np.int64) + prefix


def doc_stats(token_nll, context_lengths, token_bytes, edges: np.ndarray) -> np.ndarray:
    """``(bins, 3)`` float64: per bin the NLL sum (nats), token count and byte sum.

    Add the arrays of a document's windows (or batches) to get the document's.
    """
    nll = np.asarray(token_nll, dtype=np.float64).ravel()
    nbytes = np.asarray(token_bytes, dtype=np.float64).ravel()
    idx = bin_index(np.asarray(context_lengths).ravel(), edges)
    if not nll.size == nbytes.size == idx.size:
        raise ValueError("token_nll, context_lengths and token_bytes must have the same length")
    nb = len(edges) - 1
    out = np.empty((nb, 3), dtype=np.float64)
    out[:, NLL] = np.bincount(idx, weights=nll, minlength=nb)
    out[:, TOKENS] = np.bincount(idx, minlength=nb)
    out[:, BYTES] = np.bincount(idx, weights=nbytes, minlength=nb)
    return out


def observed_range(window: int, stride: int) -> tuple[int, int]:
    """Context lengths that tokens after the first window get: ``(window - stride + 1, window)``."""
    if window < 1 or not 1 <= stride <= window:
        raise ValueError(f"need 1 <= stride <= window, got window={window}, stride={stride}")
    return window - stride + 1, window


def bin_coverage(edges: np.ndarray, window: int, stride: int) -> list[str]:
    """Per bin: ``steady`` / ``partial`` / ``first_window_only`` against :func:`observed_range`."""
    lo_obs, _ = observed_range(window, stride)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        top = min(int(hi) - 1, window)
        out.append("steady" if lo >= lo_obs else "partial" if top >= lo_obs else "first_window_only")
    return out


def first_window_rows(position, context) -> np.ndarray:
    """True where a target was scored in its document's first window: its context is the whole document
    before it (``context == position + 1``; ``position`` counts from the first scored target)."""
    return np.asarray(context, dtype=np.int64) == np.asarray(position, dtype=np.int64) + 1


def observed_coverage(edges: np.ndarray, window: int, stride: int, first, after) -> list[str | None]:
    """Per bin, from the tokens actually scored in first windows (``first``) and after them (``after``).

    ``first_window_only`` when nothing after a first window landed in the bin; otherwise ``steady`` if
    every length of the bin is one later windows score (:func:`bin_coverage`), else ``partial``;
    ``None`` for an empty bin.
    """
    plan = bin_coverage(edges, window, stride)
    out = []
    for p, f, a in zip(plan, first, after):
        if f + a == 0:
            out.append(None)
        else:
            out.append("first_window_only" if a == 0 else "steady" if p == "steady" else "partial")
    return out


def _ratio(num, den):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan) / LN2


def _bits(r: dict) -> tuple[list | None, float | None, float | None]:
    """``([low, high], se, df)`` in bits from a :func:`ratio_stats` result in nats (``None`` if no interval)."""
    if r["low"] is None:
        return None, None, None
    return [r["low"] / LN2, r["high"] / LN2], r["se"] / LN2, r["df"]


def _bin_intervals(a: np.ndarray, b: int, level: float) -> dict:
    """Bits/token and bits/byte t intervals of bin ``b`` over the documents that scored in it."""
    t, st, dt = _bits(ratio_stats(a[:, b, NLL], a[:, b, TOKENS], level))
    y, sy, dy = _bits(ratio_stats(a[:, b, NLL], a[:, b, BYTES], level))
    n = int((a[:, b, TOKENS] > 0).sum())
    return {"bits_per_token_interval": t, "bits_per_byte_interval": y, "se": {"bits_per_token": st,
            "bits_per_byte": sy}, "df": {"bits_per_token": dt, "bits_per_byte": dy}, "few_documents": n < MIN_DOCUMENTS}


def _gain_interval(a: np.ndarray, b_lo: int, b_hi: int, level: float) -> dict:
    """Paired linearised t interval of bits/token(bin ``b_lo``) − bits/token(bin ``b_hi``) over documents."""
    d = paired_delta(a[:, b_lo, NLL], a[:, b_lo, TOKENS], a[:, b_hi, NLL], a[:, b_hi, TOKENS], level)
    iv = None if d["low"] is None else [d["low"], d["high"]]
    return {"interval": iv, "se": d["se"], "df": d["df"], "documents": d["documents"],
            "few_documents": d["few_documents"], "significant": d["significant"]}


def _check(per_doc_bins) -> np.ndarray:
    a = np.asarray(per_doc_bins, dtype=np.float64)
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"per_doc_bins must be (docs, bins, 3), got shape {a.shape}")
    return a


def _window_fields(tokens: np.ndarray, edges: np.ndarray, window, stride, after) -> list[dict]:
    """Per bin: tokens from first windows and after them, the coverage they show, and the minimum flag."""
    nb = len(tokens)
    known = after is not None and window is not None and stride is not None
    after = np.asarray(after, dtype=np.int64) if known else np.zeros(nb, np.int64)
    first = tokens.astype(np.int64) - after
    cov = observed_coverage(edges, window, stride, first, after) if known else [None] * nb
    return [{"tokens_first_window": int(first[b]) if known else None,
             "tokens_after_first_window": int(after[b]) if known else None,
             "coverage": cov[b], "below_min_tokens": bool(tokens[b] < MIN_BIN_TOKENS)} for b in range(nb)]


def summarize_context(per_doc_bins, edges: np.ndarray, window: int | None = None, stride: int | None = None,
                      level: float = 0.95, after=None, after_range=None) -> dict:
    """Per-bin bits/token and bits/byte with intervals, and the gain between consecutive bins.

    ``per_doc_bins`` is ``(docs, bins, 3)`` from :func:`doc_stats`. Empty bins
    give NaN; a bin's intervals are ``None`` with fewer than 2 documents scored
    in it (a gain's: in either of its bins). ``after`` holds, per bin, the tokens scored
    after their document's first window and ``after_range`` the fewest and most
    context tokens those had (``None`` if none); ``coverage`` is filled from
    them when ``window`` and ``stride`` are given too, else ``None``.
    """
    a = _check(per_doc_bins)
    if a.shape[1] != len(edges) - 1:
        raise ValueError(f"{a.shape[1]} bins but {len(edges) - 1} from the edges")
    tot = a.sum(axis=0)
    bpt, bpb = _ratio(tot[:, NLL], tot[:, TOKENS]), _ratio(tot[:, NLL], tot[:, BYTES])
    nb = a.shape[1]
    extra = _window_fields(tot[:, TOKENS], edges, window, stride, after)
    bins = []
    for b in range(nb):
        top = int(edges[b + 1]) - 1 if window is None else min(int(edges[b + 1]) - 1, window)
        bins.append({"bin": b, "lo": int(edges[b]), "hi": top, "tokens": int(tot[b, TOKENS]),
                     "bytes": int(tot[b, BYTES]), "nll": float(tot[b, NLL]),
                     "docs": int((a[:, b, TOKENS] > 0).sum()),
                     "bits_per_token": float(bpt[b]), "bits_per_byte": float(bpb[b]),
                     **_bin_intervals(a, b, level), **extra[b]})
    gains = [{"from_bin": b, "to_bin": b + 1, "bits_per_token": float(bpt[b] - bpt[b + 1]),
              **_gain_interval(a, b, b + 1, level)} for b in range(nb - 1)]
    return {"bins": bins, "gains": gains, "window": window, "stride": stride,
            "observed_range": observed_range(window, stride) if window and stride else None,
            "tokens_after_first_window": None if after is None else int(np.sum(after)),
            "after_first_window_range": None if after_range is None else [int(x) for x in after_range],
            "min_bin_tokens": MIN_BIN_TOKENS,
            "resamples": 0, "seed": None, "level": level, "method": METHOD, "min_documents": MIN_DOCUMENTS}


def information_gain(per_doc_bins, edges: np.ndarray, lo: int, hi: int, level: float = 0.95) -> dict:
    """Bits/token at context length ``lo``'s bin minus at ``hi``'s bin, with a paired t interval (linearised).

    E.g. ``lo=64, hi=1024`` compares bin [64, 128) with bin [1024, 2048).
    """
    a = _check(per_doc_bins)
    b_lo, b_hi = (int(i) for i in bin_index([lo, hi], edges))
    tot = a.sum(axis=0)
    bpt = _ratio(tot[:, NLL], tot[:, TOKENS])
    out = {"lo": lo, "hi": hi, "lo_bin": b_lo, "hi_bin": b_hi, "bits_per_token_lo": float(bpt[b_lo]),
           "bits_per_token_hi": float(bpt[b_hi]), "gain": float(bpt[b_lo] - bpt[b_hi]),
           "resamples": 0, "seed": None, "method": METHOD, "level": level}
    out.update(_gain_interval(a, b_lo, b_hi, level))
    return out
