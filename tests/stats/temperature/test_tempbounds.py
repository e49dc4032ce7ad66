"""Convexity bounds on the best temperature, against brute-force float64 minimisation of real NLL curves."""

import math

import numpy as np
import pytest
import torch

from lm_eval_it.stats.temperature.best import outward
from lm_eval_it.stats.temperature.bounds import convexity_bounds, temperature_interval


def nll_curve(seed: int, rows=40, vocab=50, scale=3.0):
    """Float64 total NLL, its slope in β and the total entropy of softmax(β·z) on random logits."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, vocab, generator=g, dtype=torch.float64) * scale
    # targets mostly the argmax, sometimes not: a finite best β
    y = torch.where(torch.rand(rows, generator=g) < 0.6, z.argmax(-1), torch.randint(0, vocab, (rows,), generator=g))

    def at(beta):
        lp = torch.log_softmax(beta * z, -1)
        p = lp.exp()
        nll = -lp.gather(1, y[:, None]).sum().item()
        slope = ((p * z).sum(-1) - z.gather(1, y[:, None]).squeeze(1)).sum().item()
        return nll, slope, -(p * lp).sum().item()
    return at


def argmin_beta(at, lo=1e-6, hi=1e3) -> float:
    """Bisection on the sign of the float64 slope (convex: the slope rises with β)."""
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if at(mid)[1] < 0 else (lo, mid)
    return math.sqrt(lo * hi)


@pytest.mark.float64_reference
@pytest.mark.parametrize("seed", range(12))
def test_bounds_hold_the_brute_force_minimum_with_few_points(seed):
    at = nll_curve(seed, scale=1.0 + seed % 4)
    truth = argmin_beta(at)
    f_min, _, h_min = at(truth)
    rng = np.random.default_rng(seed)
    for n_points in (1, 2, 3, 6):
        betas = np.sort(np.exp(rng.uniform(math.log(0.05), math.log(20.0), n_points)))
        vals = [at(b) for b in betas]
        c = convexity_bounds(betas, [v[0] for v in vals], [v[1] for v in vals])
        lo, hi = c["beta_interval"]
        assert lo <= truth <= hi
        assert c["nll_interval"][0] <= f_min <= c["nll_interval"][1]
        assert c["nll_interval"][0] <= h_min <= c["nll_interval"][1]  # entropy = NLL at the minimiser
        assert c["nll_interval"][1] == pytest.approx(min(v[0] for v in vals), rel=2e-6)  # a measured value
        t_lo, t_hi = temperature_interval(c["beta_interval"])
        assert t_lo <= 1 / truth and (t_hi is None or 1 / truth <= t_hi)


def test_bounds_are_tighter_than_the_bracket_and_shrink_with_points():
    at = nll_curve(3)
    truth = argmin_beta(at)
    widths = []
    for betas in ([0.5 * truth, 3 * truth], [0.5 * truth, 0.9 * truth, 1.2 * truth, 3 * truth]):
        vals = [at(b) for b in betas]
        c = convexity_bounds(betas, [v[0] for v in vals], [v[1] for v in vals])
        lo, hi = c["beta_interval"]
        bracket = c["bracket_beta"]
        assert lo <= truth <= hi and (hi - lo) < (bracket[1] - bracket[0])
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 5


def test_slopes_of_one_sign_leave_the_interval_open_on_that_side():
    at = nll_curve(5)
    truth = argmin_beta(at)
    below = [truth / 8, truth / 4]  # slopes negative: the minimiser lies at a larger β, no upper end
    vals = [at(b) for b in below]
    c = convexity_bounds(below, [v[0] for v in vals], [v[1] for v in vals])
    assert c["bracket_beta"] is None and c["beta_interval"][0] <= truth and math.isinf(c["beta_interval"][1])
    assert c["nll_interval"][0] == 0.0 <= at(truth)[0]  # every tangent falls for ever: only NLL ≥ 0 bounds it
    assert temperature_interval(c["beta_interval"])[0] == 0.0


def test_printed_intervals_round_outward():
    assert outward(0.26985, 0.34101) == "[0.2698, 0.3411]"
    assert outward(1.41216, 1.41482) == "[1.412, 1.415]"


def test_a_slope_within_its_rounding_of_zero_does_not_end_the_interval():
    """The minimiser lies 2.5e-9 past a measured point whose float32 slope came out with the wrong sign: with
    the slope's rounding bound the certain interval still holds it (without it, it would not)."""
    from lm_eval_it.stats.temperature.bounds import convexity_bounds

    b_star = 1.0 - 2.5e-9
    b = np.array([0.5, 1.0, 1.6])
    f = (b - b_star) ** 2 + 3.0
    g = 2 * (b - b_star)
    g[1] = -1e-8  # true slope +5e-9, rounded to the other side
    blind = convexity_bounds(b, f, g)["beta_interval"]
    assert not blind[0] <= b_star <= blind[1]  # what the rounding does without the allowance
    lo, hi = convexity_bounds(b, f, g, slope_error=[1e-9, 2e-8, 1e-9])["beta_interval"]
    assert lo <= b_star <= hi and hi - lo < 0.7
    low, up = convexity_bounds(b, f, g, slope_error=[1e-9, 2e-8, 1e-9])["nll_interval"]
    assert low <= 3.0 <= up
