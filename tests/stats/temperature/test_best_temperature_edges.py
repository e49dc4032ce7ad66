"""Best temperature from sweep points: the bracket holds the float64 minimiser, the error estimate is true,
refinement ends exact; edges and degenerate inputs give no false number."""

import numpy as np
import pytest


def _lm_points(seed, T0, scale, n=200, V=120):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, scale, (n, V))
    zt = z / T0
    p = np.exp(zt - zt.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(V, p=row) for row in p])

    def at(beta):
        zb = z * beta
        m = zb.max(1, keepdims=True)
        e = np.exp(zb - m); s = e.sum(1)
        q = e / s[:, None]
        mean = (q * z).sum(1); var = (q * z * z).sum(1) - mean**2
        zy = z[np.arange(n), y]
        return (m[:, 0] + np.log(s) - beta * zy).sum(), (mean - zy).sum(), var.sum()

    b = 1.0
    for _ in range(100):  # float64 Newton: the true minimiser
        f, g, h = at(b)
        b = b - g / h
    return at, 1.0 / b


@pytest.mark.float64_reference
@pytest.mark.parametrize("seed,T0,scale", [(0, 0.37, 3.0), (1, 1.05, 2.0), (2, 2.5, 1.0), (3, 6.0, 0.5)])
def test_best_temperature_label_and_error_estimate_are_true(seed, T0, scale):
    """A single swept T = 1: the search points bracket a best T near 1 and interpolate it within the error
    estimate; a best T beyond them is reported as beyond, with a certain interval that holds it. Then the exact
    refinement (outward first when beyond) ends 'exact' at the float64 minimiser."""
    from lm_eval_it.stats.temperature.best import (
        best_from_points,
        outward_points,
        refinement_points,
        search_temperatures,
    )

    at, t_true = _lm_points(seed, T0, scale)
    temps = sorted(set(search_temperatures([1.0])) | {1.0})
    betas = [1 / t for t in temps]
    pts = [at(b) for b in betas]
    r = best_from_points(betas, *zip(*pts))
    t_lo, t_hi = r["temperature_interval"]
    assert t_lo <= t_true <= (t_hi if t_hi is not None else float("inf"))  # certain, whichever case
    if min(temps) < t_true < max(temps):
        assert r["method"] == "interpolated"
        lo, hi = sorted(r["bracket_temperatures"])
        assert lo <= t_true <= hi
        assert abs(r["temperature"] - t_true) <= r["error_estimate_temperature"]
    else:
        assert r["method"] == "beyond" and r["temperature"] is None
        assert r["beyond"] == ("below" if t_true < min(temps) else "above")
        # the Newton prediction points the right way (an estimate: not asserted to be close)
        assert (r["newton_temperature"] < min(temps)) == (t_true < min(temps))
    passes = 0
    for passes in range(1, 9):
        if r["method"] not in ("interpolated", "beyond"):
            break
        for t in outward_points(r) if r["method"] == "beyond" else refinement_points(r, passes):
            betas.append(1 / t); pts.append(at(1 / t))
        r = best_from_points(betas, *zip(*pts))
    assert r["method"] == "exact", passes
    assert abs(r["temperature"] / t_true - 1) <= 1e-6
    lo, hi = sorted(r["bracket_temperatures"])
    assert lo <= t_true * (1 + 1e-12) and hi >= t_true * (1 - 1e-12)


def test_best_temperature_edges_and_degenerate_inputs():
    from lm_eval_it.stats.temperature.best import best_from_points, label

    b = np.array([1e-3, 1e-2, 0.1, 1.0, 10.0, 1e3])  # betas (T = 1e3 .. 1e-3)
    # minimum just inside T = 1e-3 (β = 999): bracketed between the last two points
    b0 = 999.0
    r = best_from_points(b, (b - b0) ** 2, 2 * (b - b0), np.full(6, 2.0))
    assert r["method"] == "interpolated" and r["temperature"] == pytest.approx(1 / b0, rel=1e-12)
    # beyond either edge: never a number, and the note names the right side
    r = best_from_points(b, (b - 2000) ** 2, 2 * (b - 2000), np.full(6, 2.0))
    assert r["temperature"] is None and r["beyond"] == "below" and "falls as T falls" in label(r)
    r = best_from_points(b, (b - 1e-4) ** 2, 2 * (b - 1e-4), np.full(6, 2.0))
    assert r["temperature"] is None and r["beyond"] == "above" and "T = 1000" in label(r)
    # a slope of exactly 0 is a stationary point only between slopes of opposite sign; alone (one point, or at
    # an end of the search) it may be a float32 underflow, so the minimum is certain but T is left open
    lone = best_from_points([1.0], [2.0], [0.0], [1.0])
    assert lone["method"] == "flat" and not lone["exact"] and lone["temperature_interval"] == [0.0, None]
    assert best_from_points([0.5, 1.0, 2.0], [3.0, 2.0, 3.0], [-1.0, 0.0, 1.0], [1.0] * 3)["method"] == "at_point"
    assert best_from_points([1.0], [2.0], [-1.0], [1.0])["temperature"] is None


def test_outward_search_never_steps_back_inside_and_says_when_the_range_is_exhausted():
    from lm_eval_it.stats.temperature.best import best_from_points, label, outward_points

    # a swept T already past the range's end: nothing more to search (the edge lies inward, its slope known)
    above = best_from_points([1 / 5000, 1.0], [1.0, 2.0], [1.0, 1.0], [1.0, 1.0])
    assert above["method"] == "beyond" and above["beyond"] == "above" and outward_points(above) == []
    assert "the search range ends there" in label(above) and "searches further" not in label(above)
    below = best_from_points([1.0, 1 / 5e-4], [2.0, 1.0], [-1.0, -1.0], [1.0, 1.0])
    assert below["beyond"] == "below" and outward_points(below) == []
    # inside the range: steps beyond the last point only, ending at the range's edge
    near = best_from_points([1 / 400, 1.0], [1.0, 2.0], [1.0, 1.5], [1e-9, 1.0])
    pts = outward_points(near)
    assert pts and all(t > 400 for t in pts) and max(pts) == 1000.0
    assert "searches further" in label(near)
