"""Certain bounds on the best temperature and the minimum NLL, from convexity alone (pure numpy).

The total NLL ``f(β)`` of softmax(z·β) is convex in β = 1/T. At each measured β_i the
value ``f_i`` and the slope ``g_i`` are known exactly (up to float rounding), so:

* ``U = min_i f_i`` is a measured NLL, hence an upper bound on the minimum;
* every tangent ``t_i(β) = f_i + g_i·(β − β_i)`` lies below ``f`` everywhere, so
  ``L = min_β max_i t_i(β)`` is a lower bound on the minimum;
* the minimiser β* has ``max_i t_i(β*) ≤ f(β*) ≤ U``: it lies in the interval where every
  tangent is at most ``U`` (closed form, one end per sign of slope), and between the two
  neighbouring points where the slope changes sign;
* at β* the total entropy equals the total NLL (``H − NLL = −β·dNLL/dβ = 0``), so the
  entropy at the best T lies in the same ``[L, U]``.

No curvature is used: the bounds hold for any convex function with these values and
slopes, however few the points. The measured values are sums of float32 per-token values;
:data:`ROUND_RTOL` of ``U`` is allowed for their rounding on both sides of the NLL bounds. Each
slope comes with a bound on its rounding (``slope_error``, from the summed magnitudes of the
per-token terms): a slope within it of 0 has no certain sign and does not end the bracket, and the
tangents are taken at their shallowest slopes, so a minimiser within rounding of a measured point
is still inside the interval.

Example::

    >>> import numpy as np
    >>> b = np.array([0.5, 1.0, 1.5, 2.0]); f = (b - 1.2) ** 2 + 1; g = 2 * (b - 1.2)  # minimum 1 at β = 1.2
    >>> c = convexity_bounds(b, f, g)
    >>> [round(x, 4) for x in c["beta_interval"]], [round(x, 4) for x in c["nll_interval"]]
    ([1.0, 1.4167], [0.94, 1.04])
"""

from __future__ import annotations

import math

import numpy as np

ROUND_RTOL = 1e-6  # allowance, relative to the smallest measured NLL, for the rounding of the summed values


def _tangent_max(beta: float, b: np.ndarray, f: np.ndarray, g: np.ndarray, u: np.ndarray) -> float:
    """The upper envelope of the tangents at ``beta``, each at its shallowest slope within ``u``."""
    return float(np.max(f + g * (beta - b) - u * np.abs(beta - b)))


def _lowest_tangent_max(lo: float, hi: float, b, f, g, u) -> float:
    """``min over [lo, hi] of max_i t_i``: at an end, a kink or where two tangent pieces cross (the envelope is
    piecewise linear; with slope errors each tangent bends at its own point)."""
    cands = [lo] + ([hi] if math.isfinite(hi) else []) + [float(x) for x in b[(b >= lo) & (b <= hi)] if u.any()]
    signs = (-1.0, 1.0) if u.any() else (0.0,)
    for i in range(b.size):
        for j in range(i + 1, b.size):
            for si in signs:
                for sj in signs:
                    gi, gj = g[i] + si * u[i], g[j] + sj * u[j]
                    if gi != gj:
                        x = (f[j] - f[i] + gi * b[i] - gj * b[j]) / (gi - gj)
                        if lo <= x <= hi:
                            cands.append(float(x))
    if not math.isfinite(hi) and np.all(g + u < 0):  # every tangent falls without end: only f ≥ 0 is left
        return 0.0
    return max(0.0, min(_tangent_max(x, b, f, g, u) for x in cands))


def convexity_bounds(betas, f, g, slope_error=None) -> dict:
    """Certain bounds from values ``f`` and slopes ``g`` of a convex, non-negative ``f(β)`` at ``betas`` (β ≥ 0).

    Returns ``beta_interval`` ``[lo, hi]`` holding the minimiser (``hi`` is ``inf`` when every slope is
    negative), ``nll_interval`` ``[L, U]`` holding the minimum (rounding allowance included),
    ``upper_at_beta`` (where ``U`` was measured) and ``bracket_beta`` (the neighbouring points where the
    slope changes sign, or ``None`` when it does not change sign). ``consistent`` is false for values and
    slopes that no convex function has; the interval is then only the bracket. ``slope_error`` (per point,
    default 0) bounds the rounding of each slope: a slope within it of 0 has no certain sign, and every
    tangent is taken at its shallowest slope.
    """
    b, f, g = (np.asarray(x, dtype=np.float64) for x in (betas, f, g))
    u = np.zeros_like(g) if slope_error is None else np.abs(np.asarray(slope_error, dtype=np.float64))
    k = int(np.argmin(f))
    upper = float(f[k])
    tol = ROUND_RTOL * abs(upper)
    level = upper + tol
    neg, pos = g < -u, g > u  # certainly falling, certainly rising
    # bracket: the largest β with a falling slope and the smallest with a rising one. A slope of exactly 0
    # is taken as neither: in float32 it is also what a tiny slope underflows to (memorised text at small T)
    lo_b = float(np.max(b[neg])) if np.any(neg) else 0.0
    hi_b = float(np.min(b[pos])) if np.any(pos) else math.inf
    # where every tangent is at most the smallest measured NLL (closed form per tangent)
    lo = max([lo_b] + [float(x) for x in b[neg] + (level - f[neg]) / (g[neg] + u[neg])])
    hi = min([hi_b] + [float(x) for x in b[pos] + (level - f[pos]) / (g[pos] - u[pos])])
    lo = max(lo, 0.0)
    consistent = hi >= lo and hi_b >= lo_b
    if not consistent:  # values and slopes no convex function has (e.g. hand-made): keep only the bracket
        lo, hi = sorted((lo_b, hi_b))
    lower = _lowest_tangent_max(lo, hi, b, f, g, u)
    bracket = [lo_b, hi_b] if np.any(neg) and np.any(pos) else None
    low = min(lower, upper) - tol
    low = max(low, 0.0) if upper >= 0 else low  # an NLL is never negative
    return {"beta_interval": [lo, hi], "nll_interval": [low, level],
            "upper_at_beta": float(b[k]), "bracket_beta": bracket, "consistent": consistent}


def temperature_interval(beta_interval) -> list:
    """``[T_low, T_high]`` from a β interval; ``None`` for an end at T = ∞ (β = 0)."""
    lo, hi = beta_interval
    return [1.0 / hi if 0 < hi < math.inf else 0.0 if hi else math.inf, None if lo <= 0 else 1.0 / lo]
