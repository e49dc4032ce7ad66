"""Per-group results, micro and macro averages, against hand-computed and brute-force values."""

import math

import numpy as np
import pytest

from lm_eval_it.groups import compare_groups, group_results, split_groups
from lm_eval_it.stats import metric_intervals, paired_delta, resample_weights

LN2 = math.log(2)


def row(group, bits, nbytes, tokens=1, words=1, chars=None):
    return dict(group=group, nll=bits * LN2, tokens=tokens, bytes=nbytes, words=words,
                chars=nbytes if chars is None else chars)


HAND = [row("b", 10, 10, tokens=5, words=2), row("b", 30, 10, tokens=5, words=2),   # b: 40 bits / 20 bytes
        row("a", 6, 2, tokens=3, words=1)]                                          # a: 6 bits / 2 bytes


def test_hand_computed_groups_micro_macro():
    r = group_results(HAND, resamples=100, seed=5)
    assert list(r["groups"]) == ["a", "b"]
    a, b = r["groups"]["a"], r["groups"]["b"]
    assert a["bits_per_byte"] == pytest.approx(3.0) and b["bits_per_byte"] == pytest.approx(2.0)
    assert b["bits_per_token"] == pytest.approx(4.0) and b["bits_per_word"] == pytest.approx(10.0)
    assert (b["docs"], b["bytes"], b["tokens"]) == (2, 20, 10)
    assert r["micro"]["bits_per_byte"] == pytest.approx(46 / 22)          # all bits over all bytes
    assert r["micro"]["docs"] == 3
    assert r["macro"]["bits_per_byte"] == pytest.approx((3.0 + 2.0) / 2)  # each group weighs the same
    assert r["macro"]["groups"] == 2
    assert a["intervals"]["bits_per_byte"] is None                        # one document in the group
    assert b["intervals"] == metric_intervals(HAND[:2], 100, 5 + 1)       # group "b" is second: seed + 1


def test_micro_macro_intervals_brute_force_stratified():
    rng = np.random.default_rng(0)
    rows = [row(g, float(rng.uniform(5, 50)), int(rng.integers(10, 40))) for g in "xyzx" * 6 + "zz"]
    r = group_results(rows, resamples=400, seed=9)
    groups = split_groups(rows)
    ws = [resample_weights(len(ix), 400, 9 + i) for i, ix in enumerate(groups.values())]
    micro, macro = [], []
    for k in range(400):                               # one resample at a time
        nll = [sum(w[k][j] * rows[i]["nll"] for j, i in enumerate(ix)) for w, ix in zip(ws, groups.values())]
        byt = [sum(w[k][j] * rows[i]["bytes"] for j, i in enumerate(ix)) for w, ix in zip(ws, groups.values())]
        micro.append(sum(nll) / sum(byt) / LN2)
        macro.append(sum(n / b / LN2 for n, b in zip(nll, byt)) / len(nll))
    assert r["micro"]["bits_per_byte_interval"] == pytest.approx(np.quantile(micro, [0.025, 0.975]).tolist())
    assert r["macro"]["bits_per_byte_interval"] == pytest.approx(np.quantile(macro, [0.025, 0.975]).tolist())
    lo, hi = r["macro"]["bits_per_byte_interval"]
    assert lo < r["macro"]["bits_per_byte"] < hi
    assert r == group_results(rows, resamples=400, seed=9)                 # reproducible


def test_single_documents_give_no_intervals():
    r = group_results([row("a", 8, 4), row("b", 8, 2)], resamples=50)
    assert r["micro"]["bits_per_byte"] == pytest.approx(16 / 6)
    assert r["micro"]["bits_per_byte_interval"] is None and r["macro"]["bits_per_byte_interval"] is None
    with pytest.raises(ValueError):
        group_results([])


def test_compare_hand_computed_and_sorted_by_delta():
    a = [row("web", 10, 10), row("web", 10, 10), row("code", 8, 4), row("code", 8, 4), row("news", 5, 5)]
    b = [row("web", 12, 10), row("web", 12, 10), row("code", 6, 4), row("code", 6, 4), row("news", 5, 5)]
    c = compare_groups(a, b, resamples=200, seed=2)
    # web: 1.0 - 1.2 = -0.2; news: 0; code: 2.0 - 1.5 = +0.5  (A - B, ascending)
    assert [g["group"] for g in c["groups"]] == ["web", "news", "code"]
    assert [g["delta"] for g in c["groups"]] == pytest.approx([-0.2, 0.0, 0.5])
    assert c["groups"][0]["docs"] == 2
    assert c["micro"]["delta"] == pytest.approx(41 / 33 - 41 / 33)       # both runs total 41 bits on 33 bytes
    assert c["macro"]["delta"] == pytest.approx((-0.2 + 0.0 + 0.5) / 3)
    # identical per-document ratios within each group: no resampling variation at all
    assert c["macro"]["low"] == pytest.approx(0.1) and c["macro"]["high"] == pytest.approx(0.1)
    # 5 documents: too few to call a difference significant (as for a whole dataset), whatever the interval
    assert c["macro"]["significant"] is None and c["macro"]["few_documents"]
    c10 = compare_groups(a + a, b + b, resamples=200, seed=2)
    assert c10["macro"]["significant"] is True and not c10["macro"]["few_documents"]


def test_compare_matches_paired_delta_and_brute_force():
    rng = np.random.default_rng(1)
    groups = list("pqrpqrpqrpp")
    nbytes = rng.integers(10, 50, size=len(groups))
    a = [row(g, float(rng.uniform(10, 60)), int(n)) for g, n in zip(groups, nbytes)]
    b = [row(g, r["nll"] / LN2 * float(rng.uniform(0.8, 1.1)), int(n)) for g, r, n in zip(groups, a, nbytes)]
    c = compare_groups(a, b, resamples=300, seed=4)
    split = split_groups(a)
    for i, (g, ix) in enumerate(split.items()):
        col = lambda rows, k: [rows[j][k] for j in ix]  # noqa: E731
        expect = paired_delta(col(a, "nll"), col(a, "bytes"), col(b, "nll"), col(b, "bytes"), resamples=300, seed=4 + i)
        got = next(d for d in c["groups"] if d["group"] == g)
        assert {k: got[k] for k in expect} == pytest.approx(expect)
    ws = [resample_weights(len(ix), 300, 4 + i) for i, ix in enumerate(split.values())]
    samples = []
    for k in range(300):
        def bpb(rows, w, ix):
            return sum(w[k][j] * rows[i]["nll"] for j, i in enumerate(ix)) / \
                sum(w[k][j] * rows[i]["bytes"] for j, i in enumerate(ix)) / LN2
        samples.append(np.mean([bpb(a, w, ix) - bpb(b, w, ix) for w, ix in zip(ws, split.values())]))
    assert [c["macro"]["low"], c["macro"]["high"]] == pytest.approx(np.quantile(samples, [0.025, 0.975]).tolist())


def test_compare_needs_the_same_documents():
    with pytest.raises(ValueError):
        compare_groups([row("a", 1, 1)], [row("b", 1, 1)])
    with pytest.raises(ValueError):
        compare_groups([row("a", 1, 1)], [])
