"""ExactSum: the exact float64 sum of adversarial values (subnormals, ±1e308, -0.0), against Fraction."""

from fractions import Fraction

import numpy as np
import pytest

from lm_eval_it.stats.base import ExactSum

pytestmark = pytest.mark.float64_reference


def _exact(values) -> float:
    return float(sum((Fraction(float(v)) for v in values), Fraction(0)))


def test_exactsum_matches_fraction_on_adversarial_values():
    rng = np.random.default_rng(0)
    tiny = np.finfo(np.float64).tiny
    special = [5e-324, -5e-324, tiny, -tiny, tiny / 3, 1e308, -1e308, 1e308, -1e308, 1.0, 1e-16, -0.0, 0.0,
               0.1, 0.2, 0.3, -0.6, 2.0**-1074 * 3, 2.0**1023, -(2.0**1023)]
    vals = np.array(special + list(rng.normal(0, 1, 200) * 10.0 ** rng.integers(-300, 300, 200)))
    for perm in range(5):
        order = rng.permutation(len(vals))
        acc = ExactSum(1)
        for v in vals[order]:
            acc.add(np.array([v]))
        assert acc.value()[0] == _exact(vals)
    # merge / json round trip of negative accumulators
    a, b = ExactSum(2), ExactSum(2)
    a.add(np.array([-1e-300, 5e-324])); b.add(np.array([1e300, -0.0]))
    c = ExactSum.from_json(a.to_json()); c.merge(ExactSum.from_json(b.to_json()))
    assert c.value().tolist() == [_exact([-1e-300, 1e300]), 5e-324]
    # -0.0 alone sums to +0.0 (exact sum of zeros), subnormal sums are exact
    z = ExactSum(1); z.add(np.array([-0.0])); assert z.value()[0] == 0.0
    s = ExactSum(1)
    for _ in range(7):
        s.add(np.array([5e-324]))
    assert s.value()[0] == 7 * 5e-324
