"""Temperature statistics: entropy and NLL of softmax(z / T), best T, calibration.

Pure functions on logits or per-token arrays; no model. With ``d = z - max z``
and ``β = 1/T``, one exponential per vocabulary entry gives everything:

* ``Z(β) = Σ exp(β d) = 1 + Σ_{j ≠ argmax} exp(β d_j)`` (``log1p`` keeps
  confident tokens precise), ``lse = β·max z + log Z``
* NLL of the true token ``y``:  ``log Z - β d_y``           (nats)
* entropy:                      ``log Z - β Σ p d``          (nats)
* top-1 probability:            ``1 / Z`` (the argmax has ``d = 0``)
* dNLL/dβ = ``Σ p d - d_y``,  d²NLL/dβ² = ``Var_p(d)`` ≥ 0   (NLL is convex in β)

so the best temperature is found exactly by a safeguarded Newton search on β
(:func:`minimize_convex`), not read off a grid.

Example::

    >>> import torch, math
    >>> s = softmax_stats(torch.tensor([[0.0, 0.0, 0.0, 0.0]]), torch.tensor([1]), [1.0, 0.5])
    >>> [round(v / math.log(2), 6) for v in s["entropy"][0].tolist()]  # uniform: 2 bits at any T
    [2.0, 2.0]
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from lm_eval_it.stats.temperature.kernel import checked_block

LN2 = math.log(2.0)


BLOCK = 1 << 19  # elements per cache-sized block (2 MiB of float32): 10 rows of a 49k vocabulary
FUSED_BLOCK = 1 << 21  # the fused kernel reads each row once per T from cache, whatever the block: fewer calls


def softmax_stats(logits: torch.Tensor, targets: torch.Tensor, temperatures, derivatives: bool = False,
                  dtype: torch.dtype = torch.float32, kernel=None) -> dict:
    """Per-row statistics of softmax(logits / T) for each T, in nats.

    Returns ``entropy``, ``nll``, ``top1_prob`` of shape (rows, len(T)), ``top1_correct`` and
    ``target_gap`` (``z_y − max z``) of shape (rows,), and with ``derivatives`` also ``d1``/``d2``
    (dNLL/dβ, d²NLL/dβ²).
    Rows are processed in blocks that stay in cache: the work is memory-bound, and
    several passes over a small block beat one pass each over a big one. ``dtype``
    float64 computes them from the same logits in double precision (the exact
    best-T refinement: near the minimum the slope is a sum of cancelling terms).
    ``kernel`` (from :func:`lm_eval_it.stats.temperature.kernel.compiled`) computes float32 logits
    with the fused kernel of :mod:`lm_eval_it.stats.temperature.kernel` (one read of a row per T);
    if it fails it is dropped for the process, and the eager passes below take over.
    """
    z = logits.to(dtype)
    n, vocab = z.shape
    keys = ["entropy", "nll", "top1_prob"] + (["d1", "d2"] if derivatives else [])
    out = {k: torch.empty(n, len(temperatures), dtype=dtype) for k in keys}
    correct = torch.empty(n, dtype=torch.bool)
    gap = torch.empty(n, dtype=dtype)
    fused = kernel is not None and dtype == torch.float32
    rows = max(1, (FUSED_BLOCK if fused else BLOCK) // max(1, vocab))
    betas = torch.tensor([1.0 / float(t) for t in temperatures], dtype=torch.float64)
    for i in range(0, n, rows):
        block = checked_block(z[i : i + rows], targets[i : i + rows], betas, kernel) if fused else None
        if block is None:
            fused = False
            block = _block_stats(z[i : i + rows], targets[i : i + rows], temperatures, derivatives)
        for k in keys:
            out[k][i : i + rows] = block[k]
        correct[i : i + rows] = block["top1_correct"]
        gap[i : i + rows] = block["target_gap"]
    out["top1_correct"], out["target_gap"] = correct, gap
    return out


def _block_stats(z, targets, temperatures, derivatives):
    zmax, arg = z.max(dim=-1, keepdim=True)
    d = z - zmax
    d_y = d.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    e, w = torch.empty_like(d), torch.empty_like(d)
    cols: dict[str, list[torch.Tensor]] = {}
    checked = False
    for t in temperatures:
        beta = 1.0 / float(t)
        torch.mul(d, beta, out=e)
        torch.exp(e, out=e)
        e.scatter_(-1, arg, 0.0)  # the argmax contributes exactly 1: keep it out of the float sum
        rest = e.sum(-1)
        zsum = 1.0 + rest
        mean_d = torch.mul(e, d, out=w).sum(-1) / zsum
        if not checked:  # a -inf logit (masked vocabulary) has e = 0 and e·d = 0·(-inf) = NaN, at every T
            checked = True
            if torch.isnan(mean_d).any():  # rare: pay for the repair only then, once per block
                d.clamp_min_(torch.finfo(d.dtype).min)  # e stays 0 there, and 0·finite = 0 (d_y keeps its -inf)
                mean_d = torch.mul(e, d, out=w).sum(-1) / zsum
        log_z = torch.log1p(rest)
        cols.setdefault("entropy", []).append(log_z - beta * mean_d)
        cols.setdefault("nll", []).append(log_z - beta * d_y)
        cols.setdefault("top1_prob", []).append(1.0 / zsum)
        if derivatives:
            cols.setdefault("d1", []).append(mean_d - d_y)
            second = w.mul_(d).sum(-1) / zsum
            cols.setdefault("d2", []).append((second - mean_d * mean_d).clamp_min(0))
    out = {k: torch.stack(v, dim=1).cpu() for k, v in cols.items()}
    out["top1_correct"] = (arg.squeeze(-1) == targets).cpu()
    out["target_gap"] = d_y.cpu()
    return out


def minimize_convex(fn: Callable[[float], tuple[float, float, float]], lo: float, hi: float,
                    x0: float | None = None, tol: float = 1e-10, max_iter: int = 60) -> tuple[float, int]:
    """Minimise a smooth convex function on ``[lo, hi]`` given value, first and second derivative.

    Newton steps, kept inside a bracket that shrinks with the sign of the derivative
    (bisection when a step leaves it). Returns ``(x, evaluations)``.

    >>> minimize_convex(lambda x: ((x - 2) ** 2, 2 * (x - 2), 2.0), 0.1, 10.0)[0]
    2.0
    """
    x = min(max(x0 if x0 is not None else (lo + hi) / 2, lo), hi)
    for i in range(1, max_iter + 1):
        _, g, h = fn(x)
        if g > 0:
            hi = x
        elif g < 0:
            lo = x
        else:
            return x, i
        step = x - g / h if h > 0 else None
        nxt = step if step is not None and lo < step < hi else (lo + hi) / 2
        if abs(nxt - x) <= tol * max(1.0, abs(x)) or hi - lo <= tol * max(1.0, abs(x)):
            return nxt, i
        x = nxt
    return x, max_iter


def cubic_minimizer(a: float, fa: float, ga: float, b: float, fb: float, gb: float) -> float:
    """Minimiser of the cubic that matches value and slope at ``a`` and ``b`` (clamped to [a, b]).

    >>> round(cubic_minimizer(0.0, 4.0, -4.0, 3.0, 1.0, 2.0), 6)   # f = (x - 2)^2: exact for a quadratic
    2.0
    """
    d1 = ga + gb - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - ga * gb
    if disc < 0 or gb - ga + 2.0 * math.copysign(math.sqrt(disc), b - a) == 0:
        return (a + b) / 2.0
    d2 = math.copysign(math.sqrt(disc), b - a)
    x = b - (b - a) * (gb + d2 - d1) / (gb - ga + 2.0 * d2)
    return min(max(x, min(a, b)), max(a, b))


def ece(confidence, correct, bins: int = 15, scheme: str = "width") -> float:
    """Expected calibration error of top-1 confidence: Σ_b (n_b / N) · |acc_b - conf_b|.

    ``scheme="width"``: equal-width bins on [0, 1]; ``"mass"``: equal-count bins.

    >>> ece([0.9, 0.9, 0.9, 0.9], [1, 1, 1, 0])   # 90% sure, 75% right
    0.15
    """
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return float("nan")
    if scheme == "width":
        idx = np.minimum((conf * bins).astype(int), bins - 1)
    elif scheme == "mass":
        order = np.argsort(conf, kind="stable")
        idx = np.empty(conf.size, dtype=int)
        idx[order] = np.arange(conf.size) * bins // conf.size
    else:
        raise ValueError(f"scheme must be 'width' or 'mass', got {scheme!r}")
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.sum() / conf.size * abs(corr[sel].mean() - conf[sel].mean())
    return round(float(total), 12)


def reliability(confidence, correct, bins: int = 15) -> list[dict]:
    """Per equal-width bin: count, mean confidence, accuracy (for reliability diagrams)."""
    conf = np.asarray(confidence, dtype=np.float64)
    corr = np.asarray(correct, dtype=np.float64)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        sel = idx == b
        out.append({"low": b / bins, "high": (b + 1) / bins, "count": int(sel.sum()),
                    "confidence": float(conf[sel].mean()) if sel.any() else None,
                    "accuracy": float(corr[sel].mean()) if sel.any() else None})
    return out


QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
