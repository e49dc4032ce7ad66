"""Fixed-bin histograms whose percentiles follow llama-perplexity's rule, within a stated error bound.

``llama-perplexity --kl-divergence`` sorts every token's KLD and Δp and reads a
percentile as ``(1 − p)·x[i] + p·x[i + 1]`` at ``i + p = fraction·(n − 1)``
(index in float32, as there), the median as the middle value or the mean of the
middle two. Here nothing per token is kept: each value goes to a bin of a fixed
histogram (counts add, so batches, documents, resumes and ranks merge exactly),
and the order statistic ``x[i]`` is read inside the bin that holds it:

* :data:`KLD_BINS` — an exact-zero bin, an underflow bin (0, 1e-10), log-spaced
  bins of relative width :data:`REL` = 1e-3 on [1e-10, 1e3) nats, and an
  overflow bin [1e3, max];
* :data:`DP_BINS` — Δp ∈ [−1, 1] on signed log bins: relative width 1e-3 for
  1e-7 ≤ |Δp| ≤ 1, one bin each for (−1e-7, 0) and (0, 1e-7), and an exact-zero bin.

An order statistic's estimate lies in its bin and inside the exact [min, max], so its
error is at most ``REL·|x[i]|`` (or the underflow width, 1e-10 for KLD and 1e-7 for Δp);
the interpolated percentile is off by at most ``REL·((1 − p)|x[i]| + p|x[i + 1]|)``
plus that absolute floor: for KLD (≥ 0) within 0.1% of the value itself. Only the
KLD overflow bin (> 1e3 nats) has no bound beyond the exact maximum.

Example::

    >>> import torch
    >>> x = torch.tensor([0.0, 0.0, 2e-3, 0.5])
    >>> c = np.bincount(KLD_BINS.index(x).numpy(), minlength=KLD_BINS.size)
    >>> x15 = KLD_BINS.percentile(c, 0.5, 0.0, 0.5)     # halfway between x[1] = 0 and x[2] = 2e-3
    >>> abs(x15 - 1e-3) <= REL * 1e-3, x15 == KLD_BINS.median(c, 0.0, 0.5)
    (True, True)
"""

from __future__ import annotations

import math

import numpy as np
import torch

REL = 1e-3


def _geometric(lo: float, hi: float) -> np.ndarray:
    """lo·(1 + REL)^j for j = 0 … until the edge reaches hi (the last edge ≥ hi)."""
    j = math.ceil(math.log(hi / lo) / math.log1p(REL))
    return lo * (1.0 + REL) ** np.arange(j + 1, dtype=np.float64)


class Bins:
    """Bins with per-bin bounds ``lo[k] ≤ x ≤ hi[k]`` (ascending), a value → bin map, and llama's percentiles."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray, index):
        self.lo, self.hi, self._index = lo, hi, index
        self.size = lo.size

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """The bin of each value (int64, on ``x``'s device)."""
        return self._index(x.double())

    def order_stats(self, counts: np.ndarray, i: np.ndarray, vmin: float, vmax: float) -> np.ndarray:
        """Estimates of the sorted values x[i] (0-based) from ``counts``, inside each one's bin and [vmin, vmax]."""
        counts = np.asarray(counts, np.int64)
        n = int(counts.sum())
        i = np.asarray(i, np.int64)
        cum = np.concatenate([[0], np.cumsum(counts)])
        k = np.searchsorted(cum[1:], i, side="right")
        lo, hi = self.lo[k], np.minimum(self.hi[k], vmax)
        lo = np.maximum(lo, vmin)
        est = lo + (i - cum[k] + 0.5) / counts[k] * np.maximum(hi - lo, 0.0)
        est = np.clip(est, vmin, vmax)
        return np.where(i == 0, vmin, np.where(i == n - 1, vmax, est))

    def percentile(self, counts: np.ndarray, fraction: float, vmin: float, vmax: float) -> float:
        """llama-perplexity's ``percentile(values, fraction)``: linear between x[i] and x[i + 1] at
        i + p = fraction·(n − 1)."""
        n = int(np.asarray(counts).sum())
        if n == 0:
            return math.nan
        f = np.float32(fraction)
        if f <= 0:
            return float(vmin)
        if f >= 1:
            return float(vmax)
        p = np.float32(f * np.float32(n - 1))  # float32, as llama.cpp computes it
        ip = int(p)
        p = float(np.float32(p - np.float32(ip)))
        a, b = self.order_stats(counts, np.array([ip, min(ip + 1, n - 1)]), vmin, vmax)
        return float((1 - p) * a + p * b)

    def median(self, counts: np.ndarray, vmin: float, vmax: float) -> float:
        """The middle value (odd n) or the mean of the middle two (even n), as llama-perplexity prints it."""
        n = int(np.asarray(counts).sum())
        if n == 0:
            return math.nan
        if n % 2:
            return float(self.order_stats(counts, np.array([n // 2]), vmin, vmax)[0])
        a, b = self.order_stats(counts, np.array([n // 2 - 1, n // 2]), vmin, vmax)
        return float(0.5 * (a + b))


def _kld_bins() -> Bins:
    e = _geometric(1e-10, 1e3)
    lo = np.concatenate([[0.0, 0.0], e])
    hi = np.concatenate([[0.0], e, [math.inf]])
    edges = torch.from_numpy(e)

    def index(x: torch.Tensor) -> torch.Tensor:
        k = torch.bucketize(x.contiguous(), edges.to(x.device), right=True) + 1
        return torch.where(x <= 0, torch.zeros_like(k), k)

    return Bins(lo, hi, index)


def _dp_bins() -> Bins:
    p = _geometric(1e-7, 1.0)
    j = p.size - 1
    mag_lo = np.concatenate([[0.0], p[:-1]])  # |x| bounds of magnitude bin m = 0 … J
    mag_hi = p
    lo = np.concatenate([-mag_hi[::-1], [0.0], mag_lo])
    hi = np.concatenate([-mag_lo[::-1], [0.0], mag_hi])
    edges = torch.from_numpy(p)

    def index(x: torch.Tensor) -> torch.Tensor:
        m = torch.bucketize(x.abs().contiguous(), edges.to(x.device), right=True).clamp_(max=j)
        return torch.where(x < 0, j - m, torch.where(x > 0, j + 2 + m, torch.full_like(m, j + 1)))

    return Bins(lo, hi, index)


KLD_BINS = _kld_bins()
DP_BINS = _dp_bins()
