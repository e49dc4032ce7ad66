"""Per-document memorisation signals and robust outlier flags (pure numpy).

Two signals, each computed once per document as it completes:

* **zlib ratio** (Carlini et al. 2021): model bits of the document divided by
  zlib bits of the same bytes, ``(NLL / ln 2) / (8 · len(zlib.compress(text, 9)))``
  - a raw zlib stream (2-byte header, Adler-32 trailer) at level 9 of the
  scored text in UTF-8. **Low** is suspicious: the model compresses the text
  far better than its surface redundancy explains.
* **Min-K% prob** (Shi et al. 2023): the mean log-probability (natural log,
  i.e. ``-NLL``) of the ``k``% least likely tokens. The count is
  ``max(1, ceil(k/100 · n))`` for ``n`` scored tokens, with ``k/100 · n`` taken
  exactly from ``k``'s decimal form (k=7, n=100 gives 7, not 8). It is the
  negated mean of the largest NLLs, so ties do not matter. **High** is
  suspicious: even the least likely tokens are likely.

Within a dataset each signal becomes a robust z-score
``(x - median) / (1.4826 · MAD)``; when MAD is 0 the scale falls back to
``1.2533 · mean absolute deviation`` (both estimate σ for normal data), and
when that is 0 too every value equals the median and gets z = 0. NaN values
are ignored for the median and scale and are never flagged.

Example::

    >>> nll = np.array([0.1, 0.2, 3.0, 0.3, 2.0], dtype=np.float32)
    >>> round(min_k_percent(nll, k=20), 6)      # 1 token: the largest NLL
    -3.0
    >>> round(min_k_percent(nll, k=40), 6)      # 2 tokens: -(3 + 2) / 2
    -2.5
    >>> robust_z([1.0, 2.0, 3.0, 4.0, 100.0]).round(3).tolist()
    [-1.349, -0.674, 0.0, 0.674, 65.426]
    >>> flag_outliers([1.0, 2.0, 3.0, 4.0, 100.0], "high")
    [4]
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numpy as np

LN2 = math.log(2.0)
MAD_SCALE = 1.4826        # 1 / Φ⁻¹(3/4): MAD → σ for normal data
MEANAD_SCALE = 1.2533     # sqrt(π / 2): mean absolute deviation → σ
DEFAULT_K = 20.0
DEFAULT_THRESHOLD = 3.5   # Iglewicz & Hoaglin
SUSPICIOUS = {"zlib_ratio": "low", "min_k": "high"}
EXCERPT_CHARS = 200


def zlib_bits(text: str) -> int:
    """Bits of the level-9 zlib stream of ``text`` (UTF-8), header and trailer included."""
    return 8 * len(zlib.compress(text.encode("utf-8"), 9))


def zlib_ratio(nll: float, text: str) -> float:
    """Model bits (``nll`` in nats over the document) over zlib bits of the same text."""
    return float(nll) / LN2 / zlib_bits(text)


def min_k_count(n: int, k: float) -> int:
    """How many tokens Min-K% averages: ``max(1, ceil(k/100 · n))``; 0 when ``n`` is 0."""
    if not 0 < k <= 100:
        raise ValueError(f"k must be in (0, 100], got {k}")
    if n <= 0:
        return 0
    return max(1, math.ceil(Fraction(str(k)) * n / 100))


def min_k_percent(token_nll: np.ndarray, k: float = DEFAULT_K) -> float:
    """Mean natural-log probability of the ``k``% least likely tokens (NaN with no tokens)."""
    x = np.asarray(token_nll, dtype=np.float64).ravel()
    m = min_k_count(x.size, k)
    if m == 0:
        return float("nan")
    largest = np.partition(x, x.size - m)[x.size - m:]
    return float(-largest.sum() / m)


def robust_z(values) -> np.ndarray:
    """``(x - median) / (1.4826 · MAD)`` with the MAD = 0 fallback in the module notes."""
    x = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(x)
    z = np.full(x.shape, np.nan)
    if not ok.any():
        return z
    med = np.median(x[ok])
    dev = np.abs(x[ok] - med)
    scale = MAD_SCALE * np.median(dev)
    if scale == 0:
        scale = MEANAD_SCALE * dev.mean()
    z[ok] = 0.0 if scale == 0 else (x[ok] - med) / scale
    return z


def _signed(z: np.ndarray, direction: str) -> np.ndarray:
    """z turned so that larger means more suspicious."""
    if direction == "high":
        return z
    if direction == "low":
        return -z
    raise ValueError(f"direction must be 'low' or 'high', got {direction!r}")


def flag_outliers(values, direction: str, threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Indices whose robust z is beyond ``threshold`` in ``direction``, most suspicious first.

    ``direction="low"`` flags ``z <= -threshold`` (zlib ratio), ``"high"`` flags
    ``z >= threshold`` (Min-K% log-prob). Equal scores keep index order.
    """
    s = _signed(robust_z(values), direction)
    idx = np.flatnonzero(s >= threshold)  # NaN compares False
    return [int(i) for i in idx[np.argsort(-s[idx], kind="stable")]]


def top_flagged(rows: list[dict], n: int = 10, threshold: float = DEFAULT_THRESHOLD,
                signals: dict[str, str] | None = None) -> list[dict]:
    """Report rows for the documents most flagged by any signal.

    ``rows`` are per-document dicts holding each signal (default ``zlib_ratio``
    and ``min_k``; a missing one counts as NaN), a ``text``, and optionally a
    ``doc`` id (the index otherwise). A document flagged by several signals is
    one row, ranked by its most suspicious signal. Each row: ``doc``, ``index``,
    ``flags`` (signal names), ``score`` (largest suspicious-direction z), each
    signal's value and ``z_<signal>``, and ``excerpt`` (first 200 characters).
    """
    signals = SUSPICIOUS if signals is None else signals
    if not rows:
        return []
    scores = {}
    for name, direction in signals.items():
        vals = [r.get(name, float("nan")) for r in rows]
        scores[name] = (np.asarray(vals, dtype=np.float64), robust_z(vals), direction)
    out = []
    for i, r in enumerate(rows):
        flags, best = [], -math.inf
        for name, (_, z, direction) in scores.items():
            s = float(_signed(z[i:i + 1], direction)[0])
            if s >= threshold:
                flags.append(name)
                best = max(best, s)
        if flags:
            row = {"doc": r.get("doc", i), "index": i, "flags": flags, "score": best}
            for name, (vals, z, _) in scores.items():
                row[name], row[f"z_{name}"] = float(vals[i]), float(z[i])
            row["excerpt"] = str(r.get("text", ""))[:EXCERPT_CHARS]
            out.append(row)
    out.sort(key=lambda row: -row["score"])  # stable: index order among equals
    return out[:n]
