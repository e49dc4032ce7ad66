"""Context-length bins and information gain, against a brute-force float64 pass over every token."""

import math

import numpy as np
import pytest

pytestmark = pytest.mark.float64_reference


def test_context_bins_and_gain_bruteforce():
    from lm_eval_it.stats.context.bins import (
        bin_edges,
        information_gain,
        summarize_context,
    )

    rng = np.random.default_rng(6)
    edges = bin_edges(300)
    docs = []
    for _ in range(5):
        ctx = rng.integers(1, 301, 400); nll = rng.gamma(2, 1, 400); by = rng.integers(1, 5, 400)
        docs.append((ctx, nll, by))
    per_doc = np.zeros((5, len(edges) - 1, 3))
    for d, (ctx, nll, by) in enumerate(docs):
        for c, v, b in zip(ctx, nll, by):
            k = int(math.floor(math.log2(c)))
            per_doc[d, k] += (v, 1, b)
    s = summarize_context(per_doc, edges, window=300, stride=300)
    allc = np.concatenate([x[0] for x in docs]); alln = np.concatenate([x[1] for x in docs])
    allb = np.concatenate([x[2] for x in docs])
    for b in s["bins"]:
        sel = (allc >= b["lo"]) & (allc <= b["hi"])
        assert b["tokens"] == sel.sum()
        if sel.any():
            assert b["bits_per_token"] == pytest.approx(alln[sel].mean() / math.log(2), rel=1e-12)
            assert b["bits_per_byte"] == pytest.approx(alln[sel].sum() / allb[sel].sum() / math.log(2), rel=1e-12)
    g = information_gain(per_doc, edges, 64, 299)
    lo, hi = (allc >= 64) & (allc < 128), (allc >= 256) & (allc < 512)
    assert g["gain"] == pytest.approx((alln[lo].mean() - alln[hi].mean()) / math.log(2), rel=1e-12)
