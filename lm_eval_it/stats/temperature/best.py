"""The temperature that minimises total NLL, found from streamed statistics (pure numpy).

The scoring pass sums, at every swept temperature and at a few extra *search*
temperatures, the exact total NLL and its first and second derivatives in
β = 1/T (NLL is convex in β). From those points:

1. The minimiser is **bracketed** by the two neighbouring points where the slope
   changes sign. The sweep's own points do that wherever it reaches; search points are
   added only to cover T = 0.8 … 1.25 (:data:`PRIOR`, where a trained model's best T
   usually lies) and to fill gaps wider than :data:`WIDE_RATIO` (:func:`search_temperatures`:
   none for a dense sweep, two for a single T). Each costs one more read of the row, like a
   swept T. A slope that does not change sign means the best T lies beyond the points:
   that is reported as "beyond T = …" with the certain one-sided interval and a Newton
   estimate, never as a number; ``exact`` then searches outward (:func:`outward_points`).
2. Inside the bracket the quintic Hermite polynomial through the values, slopes
   and curvatures at both ends is minimised. Its distance from the cubic
   Hermite minimiser (values and slopes only) is reported as the error estimate
   (an estimate, not a bound). What is certain comes from convexity alone
   (:mod:`lm_eval_it.stats.temperature.bounds`): an interval that holds the minimiser and one
   that holds the minimum NLL; an interpolated result reports the smallest
   *measured* NLL (the upper end) and keeps the quintic's value as an estimate.
3. An optional refinement (``eval.best_temperature: exact``) scores the text
   again at points around the estimate; once the bracket is narrower than
   1e-6 in β (relative) the result is labelled ``exact``
   (float32 statistics carry noise of about that size near the minimum).

Example::

    >>> import numpy as np
    >>> b = np.array([0.5, 1.0, 2.0]); f = (b - 1.2) ** 2; g = 2 * (b - 1.2); h = np.full(3, 2.0)
    >>> r = best_from_points(b, f, g, h)
    >>> round(r["temperature"], 9), r["method"], r["bracket_temperatures"]
    (0.833333333, 'interpolated', [1.0, 0.5])
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.stats.temperature.bounds import convexity_bounds, temperature_interval

SEARCH_RANGE = (1e-3, 1e3)  # the exact refinement searches no further
PRIOR = (0.8, 1.25)  # always covered by swept or search points: a trained model's best T usually lies here
EXACT_RTOL = 1e-6
WIDE_RATIO = 1.5  # a bracket wider than this factor in T is called wide in the label; search points fill such gaps


def search_temperatures(swept: list[float]) -> list[float]:
    """The search temperatures a sweep adds: the ends of :data:`PRIOR` it does not reach, and geometric fill
    points so that no two neighbouring temperatures are more than :data:`WIDE_RATIO` apart.

    >>> search_temperatures([0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.6, 2.0]), search_temperatures([1.0])
    ([], [0.8, 1.25])
    >>> search_temperatures([0.5, 1.0, 2.0])
    [0.7071, 1.414]
    """
    swept = sorted(set(swept))
    pts = sorted(set(swept) | {t for t in PRIOR if not swept[0] <= t <= swept[-1]})
    extra = [t for t in pts if t not in swept]
    for a, b in zip(pts, pts[1:]):
        k = math.ceil(math.log(b / a) / math.log(WIDE_RATIO / 1.001) - 1e-9) - 1  # margin for the rounding
        extra += [float(f"{a * (b / a) ** (i / (k + 1)):.4g}") for i in range(1, k + 1)]
    return sorted(set(extra))


def newton_temperature(betas, f, g, h) -> float | None:
    """The Newton step's minimiser from the point of lowest NLL, as a temperature (an estimate, not a bound;
    ``None`` without curvature there, ``inf`` when the step reaches β ≤ 0).

    >>> round(newton_temperature([0.5, 1.0], [1.0, 0.6], [-2.0, -0.4], [2.0, 2.0]), 6)   # (β − 1.2)²: β = 1.2
    0.833333
    """
    k = int(np.argmin(np.asarray(f, dtype=np.float64)))
    if not h[k] > 0:
        return None
    beta = float(betas[k]) - float(g[k]) / float(h[k])
    return 1.0 / beta if beta > 0 else math.inf


def _hermite(a: float, b: float, fa, ga, ha, fb, gb, hb, order: int) -> np.polynomial.Polynomial:
    """The Hermite polynomial on u ∈ [0, 1] (β = a + u·(b − a)) matching values, slopes (and curvatures)."""
    w = b - a
    rows, rhs = [], []
    n = 6 if order == 5 else 4
    for u, f, g, h in ((0.0, fa, ga, ha), (1.0, fb, gb, hb)):
        rows.append([u**k for k in range(n)]); rhs.append(f)
        rows.append([k * u ** (k - 1) if k else 0.0 for k in range(n)]); rhs.append(g * w)
        if order == 5:
            rows.append([k * (k - 1) * u ** (k - 2) if k > 1 else 0.0 for k in range(n)]); rhs.append(h * w * w)
    return np.polynomial.Polynomial(np.linalg.solve(np.array(rows), np.array(rhs)))


def _argmin_unit(p: np.polynomial.Polynomial) -> float:
    cands = [0.0, 1.0] + [r.real for r in p.deriv().roots() if abs(r.imag) < 1e-12 and 0.0 <= r.real <= 1.0]
    # compare without the constant term (the whole NLL sum): in a narrow bracket the gain inside it is far
    # below the float64 resolution of the sum, and the end would win by rounding
    q = p - p.coef[0]
    return min(cands, key=lambda u: q(u))


def hermite_minimizer(a, b, fa, ga, ha, fb, gb, hb, order: int = 5) -> tuple[float, float]:
    """``(β, f(β))`` minimising the Hermite interpolant on ``[a, b]`` (order 5: with curvatures; 3: without).

    >>> [round(x, 12) for x in hermite_minimizer(0.0, 3.0, 4.0, -4.0, 2.0, 1.0, 2.0, 2.0)]  # (x - 2)^2
    [2.0, 0.0]
    """
    p = _hermite(a, b, fa, ga, ha, fb, gb, hb, order)
    u = _argmin_unit(p)
    return float(a + u * (b - a)), float(p(u))


def best_from_points(betas, f, g, h, exact_rtol: float = EXACT_RTOL, slope_error=None) -> dict:
    """The minimiser of a convex NLL(β) from exact values, slopes and curvatures at some β.

    Returns ``temperature`` (``None`` when beyond the searched range), ``method``
    (``exact``, ``interpolated``, ``at_point``, ``flat`` or ``beyond``), the bracket, ``nll_sum`` (measured, or
    with ``exact`` the converged interpolant), ``error_estimate_temperature`` (an estimate, not a bound),
    and the certain convexity bounds of :mod:`lm_eval_it.stats.temperature.bounds`: ``temperature_interval``
    (holds the minimiser) and ``nll_interval`` (holds the minimum NLL, a total in nats); ``newton_temperature``
    (:func:`newton_temperature`, an estimate) and, beyond the points, ``end_point`` ``[β, slope, curvature]``.
    ``slope_error`` bounds each slope's rounding (see :func:`lm_eval_it.stats.temperature.bounds.convexity_bounds`).
    """
    order = np.argsort(betas)
    b, f, g, h = ([float(v) for v in np.asarray(x, dtype=np.float64)[order]] for x in (betas, f, g, h))
    u = None if slope_error is None else np.asarray(slope_error, dtype=np.float64)[order]
    out = _best(b, f, g, h, exact_rtol, u)
    out["newton_temperature"] = newton_temperature(b, f, g, h)
    if out["method"] == "beyond":  # where an outward search starts: the last point, its slope and curvature
        k = 0 if out["beyond"] == "above" else len(b) - 1
        out["end_point"] = [b[k], g[k], h[k]]
    return out


def _best(b: list, f: list, g: list, h: list, exact_rtol: float, u=None) -> dict:
    cert = convexity_bounds(b, f, g, u)
    zero = [i for i, v in enumerate(g) if v == 0.0]
    if zero:
        k = zero[0]
        if len(zero) == 1 and 0 < k < len(g) - 1 and g[k - 1] < 0 < g[k + 1]:  # a stationary point, bracketed
            return _result(1.0 / b[k], float(f[k]), "at_point", (b[k], b[k]), 0.0, cert,
                           note="the slope is exactly 0 here")
        # a slope of 0 at an end of the search, or at several points: flat to float precision (e.g. an
        # underflow at small T on memorised text), so the minimiser is not pinned to that point
        return _result(1.0 / b[k], float(min(f)), "flat", (b[zero[0]], b[zero[-1]]), None, cert,
                       note="the slope is 0 to float precision")
    if g[0] > 0:  # NLL rises already at the smallest β searched: T beyond the largest searched
        return _result(None, float(f[0]), "beyond", (b[0], b[0]), None, cert,
                       note=f"beyond T = {1 / b[0]:g}: the NLL still falls as T rises there", side="above")
    if g[-1] < 0:
        return _result(None, float(f[-1]), "beyond", (b[-1], b[-1]), None, cert,
                       note=f"beyond T = {1 / b[-1]:g}: the NLL still falls as T falls there", side="below")
    k = next(i for i, v in enumerate(g) if v >= 0)
    lo, hi = k - 1, k
    args = (b[lo], b[hi], f[lo], g[lo], h[lo], f[hi], g[hi], h[hi])
    beta5, f5 = hermite_minimizer(*args, order=5)
    beta3, _ = hermite_minimizer(*args, order=3)
    err = abs(1.0 / beta5 - 1.0 / beta3)
    width = (b[hi] - b[lo]) / beta5
    low, up = cert["nll_interval"]
    beta = min(max(beta5, cert["beta_interval"][0]), cert["beta_interval"][1])  # outside: certainly wrong
    if width <= exact_rtol:
        return _result(1.0 / beta, min(max(f5, low), up), "exact", (b[lo], b[hi]), err, cert)
    out = _result(1.0 / beta, min(f), "interpolated", (b[lo], b[hi]), err, cert)
    out["nll_estimate_sum"] = min(max(f5, low), up)  # the quintic's value: an estimate, inside the bounds
    return out


def _result(t, nll, method, bracket, err, cert: dict, note: str = "", side: str | None = None) -> dict:
    out = {"temperature": t, "nll_sum": nll, "method": method, "exact": method in ("exact", "at_point"),
           "bracket_temperatures": [1.0 / bracket[0], 1.0 / bracket[1]],
           "error_estimate_temperature": err,
           "temperature_interval": temperature_interval(cert["beta_interval"]),
           "nll_interval": cert["nll_interval"], "nll_upper_at_temperature": 1.0 / cert["upper_at_beta"],
           "bound": "convexity"}
    if note:
        out["note"] = note
    if side:
        out["beyond"] = side
    return out


def wide_bracket(best: dict) -> bool:
    """Whether the slope changes sign across a gap wider than :data:`WIDE_RATIO` (a factor in T)."""
    lo, hi = sorted(best["bracket_temperatures"])
    return best["method"] == "interpolated" and hi / lo > WIDE_RATIO


def refinement_points(best: dict, passes_done: int) -> list[float]:
    """Temperatures for one more scoring pass that narrows the bracket around the estimate."""
    t = best["temperature"]
    lo_t, hi_t = sorted(best["bracket_temperatures"])
    beta = 1.0 / t
    width = 1.0 / lo_t - 1.0 / hi_t  # in β
    err = best.get("error_estimate_temperature")
    err_beta = width if err is None else err / t**2  # |δT| / T² = |δβ|; an estimate of 0 is kept as 0
    delta = max(min(width / 4, 10 * err_beta), beta * 1e-9)
    points = [1.0 / (beta + k * delta) for k in (-1, 0, 1) if beta + k * delta > 0]
    return points if passes_done < 8 else []


def outward_points(best: dict) -> list[float]:
    """Temperatures for a pass that looks beyond the points (``method`` ``beyond``): three steps that grow
    geometrically from the last point toward the Newton prediction (a factor 1.25–4 in β each), inside
    :data:`SEARCH_RANGE`; none once the range is exhausted.

    >>> outward_points({"end_point": [1.25, -0.5, 1.0], "beyond": "below"})   # Newton: β = 1.75
    [0.5714, 0.4082, 0.2915]
    """
    beta, g, h = best["end_point"]
    below = best["beyond"] == "below"
    step = (beta - g / h) / beta if h > 0 and beta - g / h > 0 else (4.0 if below else 0.25)
    q = min(max(step, 1.25), 4.0) if below else min(max(step, 0.25), 0.8)
    temps = [float(f"{1.0 / (beta * q ** k):.4g}") for k in (1, 2, 3)]
    lo, hi = SEARCH_RANGE
    inside = [t for t in temps if lo <= t <= hi]
    edge = lo if below else hi
    if len(inside) < len(temps) and (edge < 1.0 / beta if below else edge > 1.0 / beta):
        inside.append(edge)  # the range's end itself (only beyond the last point), so "beyond" then means beyond it
    return sorted(set(inside), reverse=True)


def exhausted(best: dict) -> bool:
    """Whether a ``beyond`` result's last point already lies at or past the end of :data:`SEARCH_RANGE`."""
    if best.get("method") != "beyond" or "end_point" not in best:
        return False
    t = 1.0 / best["end_point"][0]
    return t <= SEARCH_RANGE[0] if best["beyond"] == "below" else t >= SEARCH_RANGE[1]


def outward(lo: float, hi: float | None, sig: int = 4, decimals: int | None = None) -> str:
    """``[lo, hi]`` rounded outward to ``sig`` significant figures (or ``decimals`` places), so the printed
    interval still holds.

    >>> outward(0.269849, 0.341101), outward(12.0, None), outward(0.95681, 1.98331, decimals=4)
    ('[0.2698, 0.3412]', '[12, ∞)', '[0.9568, 1.9834]')
    """
    def r(x, up):
        if x == 0 or not math.isfinite(x):
            return x
        exp = -decimals if decimals is not None else math.floor(math.log10(abs(x))) - sig + 1
        q = 10.0 ** exp
        return (math.ceil(x / q - 1e-9) if up else math.floor(x / q + 1e-9)) * q
    spec = f".{decimals}f" if decimals is not None else f".{sig}g"
    if hi is None:
        return f"[{r(lo, False):{spec}}, ∞)"
    return f"[{r(lo, False):{spec}}, {r(hi, True):{spec}}]"


def label(best: dict) -> str:
    """One line saying how the best temperature was found, and what is certain about it."""
    if best["method"] == "beyond":
        newton = best.get("newton_temperature")
        guess = (f"; a Newton step from there predicts T ≈ {newton:.3g} (an estimate, not a bound)"
                 if newton and math.isfinite(newton) else "")
        further = ("; the search range ends there (T = 1e-3 … 1e3)" if exhausted(best)
                   else "; `best_temperature: exact` searches further")
        return (best["note"] + f"; by convexity the best T lies in {outward(*best['temperature_interval'])}"
                + guess + further)
    lo, hi = sorted(best["bracket_temperatures"])
    if best["method"] == "exact":
        if f"{lo:.9g}" == f"{hi:.9g}":  # narrower than nine significant digits show
            return f"exact: bracketed around T = {lo:.9g} (relative width {hi / lo - 1:.1e}) and converged"
        return f"exact: bracketed in [{lo:.9g}, {hi:.9g}] and converged"
    if best["method"] == "at_point":
        return "exact: the slope is 0 at a searched temperature, between slopes of opposite sign"
    if best["method"] == "flat":
        return (f"flat: the slope is 0 to float precision at T = {hi:g}" + (f" … {lo:g}" if lo != hi else "")
                + f"; the minimum NLL is certain, the best T only to lie in {outward(*best['temperature_interval'])}")
    gap = f"a wide gap (×{hi / lo:.3g}) between search temperatures" if wide_bracket(best) else "adjacent evaluated temperatures"
    return (f"by convexity the best T lies in {outward(*best['temperature_interval'])} (certain); the slope changes "
            f"sign between T = {lo:g} and {hi:g}, {gap}; {best['temperature']:.4g} is a quintic Hermite estimate "
            "(not a bound)")


def headline(block: dict) -> str:
    """The best-T sentence of the reports, from a results.json ``best`` block (bits per token and byte).

    Measured or exact values are given as numbers; an interpolated minimum as its certain convexity
    interval, with the quintic estimate named as one.
    """
    t, lab = block["temperature"], block.get("label") or ("exact" if block.get("exact") else "grid")
    nll_t, nll_b = block["nll_bits_per_token"], block["nll_bits_per_byte"]
    iv, ivb = block.get("nll_bits_per_token_interval"), block.get("nll_bits_per_byte_interval")
    if t is None:
        return f"Best T: n/a ({lab}). Lowest measured NLL {nll_t:.4f} bits/token, {nll_b:.4f} bits/byte."
    if block.get("method") != "interpolated" or not iv:
        return f"Best T = {t:.4f} ({lab}): NLL {nll_t:.4f} bits/token, {nll_b:.4f} bits/byte."
    lo, hi = sorted(block["bracket_temperatures"])
    wide = " — a wide bracket: `best_temperature: exact` measures it" if block.get("wide_bracket") else ""
    at = block["nll_measured_at_temperature"]
    return (f"Best T in {outward(*block['temperature_interval'])} (certain, by convexity; the slope changes sign "
            f"between T = {lo:g} and {hi:g}{wide}); estimate {t:.4f} (quintic Hermite, not a bound). Minimum NLL "
            f"in {outward(*iv, decimals=4)} bits/token, {outward(*ivb, decimals=4)} bits/byte (certain; the upper "
            f"end is the NLL measured at T = {at:g}); the entropy at the best T lies in the same interval "
            "(at the NLL-optimal T the two are equal).")
