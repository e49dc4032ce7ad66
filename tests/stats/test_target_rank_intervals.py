"""The 95% intervals of GLTR bucket shares (stats/target_rank.py) cover about 95% for rare buckets, and a bucket
no token fell in gets no interval (a zero-width [0, 0] would claim certainty that no spread over documents gives).

Coverage by simulation: documents of 100–1000 tokens whose own share of a bucket scatters around the true share
(a beta with concentration 500), binomial counts in each; the interval must hold the true share ≥ 93% of the time.
A symmetric t interval on the share scale clipped to [0, 1] covered about 85% here (true share 0.001, 10 documents).
"""

import math

import numpy as np
import pytest

from lm_eval_it.stats.intervals import MIN_DOCUMENTS
from lm_eval_it.stats.target_rank import BUCKETS, bucket_shares

T_975_DF9 = 2.2621571627409915  # Student t 0.975 quantile, 9 degrees of freedom (tables; scipy.stats.t.ppf)


def test_a_bucket_no_token_fell_in_gets_no_interval_rather_than_zero_width():
    counts = np.zeros((MIN_DOCUMENTS + 2, len(BUCKETS)))
    counts[:, 0] = np.arange(5, 5 + MIN_DOCUMENTS + 2)
    counts[:, 1] = 3.0  # buckets 11-100, 101-1000 and >1000: no token (a 400-entry vocabulary has no rank > 1000)
    out = bucket_shares(counts)
    assert out["intervals"]["101-1000"] is None and out["intervals"][">1000"] is None
    assert out["intervals"]["1"] is not None and out["intervals"]["2-10"] is not None
    alone = np.zeros((MIN_DOCUMENTS, len(BUCKETS)))
    alone[:, 0] = 7.0  # every token ranks 1: a share of exactly 1 has no interval either
    assert bucket_shares(alone)["intervals"]["1"] is None


def test_the_interval_is_the_linearised_t_interval_on_the_log_odds_scale_by_hand():
    hits = np.array([0, 1, 0, 2, 1, 0, 0, 3, 1, 0], dtype=np.float64)  # 10 documents of 100 tokens each
    counts = np.zeros((10, len(BUCKETS)))
    counts[:, 4], counts[:, 0] = hits, 100.0 - hits
    p = hits.sum() / 1000.0  # 0.008
    se = math.sqrt(10 / 9 * float(((hits - p * 100.0) ** 2).sum())) / 1000.0  # equal sizes: the textbook se, df 9
    lo_logit = math.log(p / (1 - p)) - T_975_DF9 * se / (p * (1 - p))
    hi_logit = math.log(p / (1 - p)) + T_975_DF9 * se / (p * (1 - p))
    want = [1 / (1 + math.exp(-lo_logit)), 1 / (1 + math.exp(-hi_logit))]
    got = bucket_shares(counts)["intervals"][">1000"]
    assert got == pytest.approx(want, rel=1e-12)
    assert 0.0 < got[0] < p < got[1] < 1.0 and got[1] - p > p - got[0]  # skewed away from 0


@pytest.mark.parametrize("share, documents", [(0.001, 10), (0.002, 20), (0.02, 10)])
def test_intervals_of_rare_buckets_cover_the_true_share_95_percent(share, documents):
    rng = np.random.default_rng(21)
    hit = shown = 0
    reps = 600
    for _ in range(reps):
        tokens = rng.integers(100, 1000, size=documents)
        own = rng.beta(share * 500, (1 - share) * 500, size=documents)
        c = rng.binomial(tokens, own)
        counts = np.zeros((documents, len(BUCKETS)))
        counts[:, 4], counts[:, 0] = c, tokens - c
        iv = bucket_shares(counts)["intervals"][">1000"]
        if iv is not None:
            shown += 1
            hit += iv[0] <= share <= iv[1]
    assert shown >= 0.95 * reps  # a bucket with no token at all is rare here (≤ 3% at 0.001 over 10 documents)
    assert hit / shown >= 0.93, f"coverage {hit / shown:.3f}"
