"""Quantiles from a histogram are within one bin of the inverted-CDF quantile, at q = 0 and 1 too."""

import numpy as np
import pytest

pytestmark = pytest.mark.float64_reference


def test_hist_quantiles_within_one_bin_of_inverted_cdf_quantile():
    """The claim holds for the inverted-CDF quantile (not for numpy's default linear one on small samples)."""
    from lm_eval_it.stats.temperature.sweep import hist_quantiles

    rng = np.random.default_rng(1)
    edges = np.linspace(0, 10, 521)
    for _ in range(30):
        x = np.minimum(rng.gamma(2, 1.5, size=rng.integers(5, 400)), 9.999)
        c = np.bincount(np.minimum((x / 10 * 520).astype(int), 519), minlength=520)
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert abs(hist_quantiles(c, edges, [q])[0] - np.quantile(x, q, method="inverted_cdf")) < edges[1]


def test_hist_quantiles_at_q_0_and_1_with_empty_edge_bins():
    """q = 0 is the minimum: with the leading bins empty it used to answer edges[0] (up to 520 bins away)."""
    from lm_eval_it.stats.temperature.sweep import hist_quantiles

    edges = np.linspace(0, 15.5, 521)
    w = edges[1]
    for x in (np.full(1000, edges[200] + 0.3 * w), np.full(37, edges[123]), np.array([7.77]), np.full(5, edges[-1]),
              np.r_[np.full(3, 0.5), np.full(7, 14.0)], np.array([0.1, 1, 2, 3, 4, 5, 6, 7, 8, 15.5])):
        c = np.bincount(np.minimum((x / 15.5 * 520).astype(int), 519), minlength=520)
        for q in (0.0, 1e-12, 1e-6, 0.05, 0.5, 0.95, 1 - 1e-9, 1.0):
            got = hist_quantiles(c, edges, [q])[0]
            assert abs(got - np.quantile(x, q, method="inverted_cdf")) <= w * (1 + 1e-12), (x[:3], q, got)
