"""Dataset totals: documents folded in any order, or in several processes and merged, equal one pass."""

import json

import numpy as np
import pytest
from engine_fakes import FakeScorer, Probe, V, executor, sequences

from lm_eval_it.engine.reduce import Reduction, dataset_metrics
from lm_eval_it.stats.temperature.sweep import TemperatureStats


def scored():
    ex = executor(3, FakeScorer(), [Probe(), TemperatureStats([0.5, 2.0], V, search=False)])
    return ex, sorted(ex.run(), key=lambda r: r.doc)


def state(red: Reduction):
    return (red.sums.to_json(), {k: v.tolist() for k, v in red.counts.items()},
            {k: v.tobytes() for k, v in red.extremes.items()}, red.per_document(),
            {k: {d: a.tobytes() for d, a in v.items()} for k, v in red.doc_arrays.items()})


def test_the_order_of_documents_does_not_change_the_totals():
    ex, results = scored()
    one = Reduction(ex.layout, ex.p)
    for r in results:
        one.add(r)
    rev = Reduction(ex.layout, ex.p)
    for r in reversed(results):
        rev.add(r)
    assert state(one) == state(rev)
    assert one.sums.value().tobytes() == rev.sums.value().tobytes()


def test_export_and_merge_equal_one_pass():
    ex, results = scored()
    one = Reduction(ex.layout, ex.p)
    for r in results:
        one.add(r)
    a, b = Reduction(ex.layout, ex.p), Reduction(ex.layout, ex.p)
    for r in results:
        (a if r.doc % 2 else b).add(r)
    b.merge(a.export())
    assert state(b) == state(one)
    assert repr(dataset_metrics(b)) == repr(dataset_metrics(one))  # nan == nan as text (no bytes here)


def test_a_document_is_added_once_and_merged_from_one_rank_only():
    ex, results = scored()
    red = Reduction(ex.layout, ex.p)
    red.add(results[2])
    before = state(red)
    red.add(results[2])
    assert state(red) == before
    other = Reduction(ex.layout, ex.p)
    other.add(results[2])
    with pytest.raises(ValueError, match=r"documents reduced on two ranks: \[2\]"):
        red.merge(other.export())


def test_totals_are_the_sums_of_the_per_document_rows():
    ex, results = scored()
    red = Reduction(ex.layout, ex.p)
    for r in results:
        red.add(r)
    t = red.totals()
    assert t.docs == len(results) and t.tokens == int(ex.p.targets.sum())
    assert t.nll == pytest.approx(sum(r.nll for r in results), rel=1e-15)
    probe = red.of(Probe())
    assert set(probe) == {"nll", "pair", "ctx"} and probe["pair"].shape == (2,)
    assert probe["pair"][1] == sum(int(ex.p.byte_table[s[1:]].sum()) for s in sequences()[0])  # target bytes
    assert probe["ctx"].sum() == t.tokens
    per_doc = red.per_doc_arrays("probe.nll", sorted(red.rows))
    assert per_doc.shape == (len(results),)
    lo, hi = red.extremes_of(Probe())["nll_ext"]
    assert lo == min(float(r.token_nll.min()) for r in results if r.tokens)
    assert hi == max(float(r.token_nll.max()) for r in results if r.tokens)


def test_an_export_is_plain_data():
    ex, results = scored()
    red = Reduction(ex.layout, ex.p)
    for r in results[:3]:
        red.add(r)
    exp = red.export()
    assert set(exp) == {"sums", "counts", "extremes", "rows", "doc_arrays"}
    assert json.loads(json.dumps([exp["sums"], exp["rows"]])) == [exp["sums"], {str(d): r for d, r in exp["rows"].items()}]
    assert all(isinstance(v, np.ndarray) for v in exp["counts"].values())
