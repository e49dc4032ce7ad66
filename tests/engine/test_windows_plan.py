"""The window plan: one row per window in named int64 columns, in one block of 40 bytes a window."""

import numpy as np

from lm_eval_it.engine.windows import COLUMNS, PlanRow, WindowPlan, plan_windows


def test_columns_hold_every_documents_windows_in_order():
    docs = [plan_windows(11, 4, 4), plan_windows(1, 4, 4), plan_windows(6, 4, 2)]
    plan = WindowPlan.of(docs)
    rows = [(d, k, w.start, w.length, w.score_from) for d, ws in enumerate(docs) for k, w in enumerate(ws)]
    assert [plan.row(i) for i in range(len(plan))] == [PlanRow(*r) for r in rows]
    assert plan.doc.tolist() == [0, 0, 0, 2, 2]
    assert plan.index.tolist() == [0, 1, 2, 0, 1]
    assert plan.start.tolist() == [0, 4, 6, 0, 1] and plan.length.tolist() == [4, 4, 4, 4, 4]
    assert plan.score_from.tolist() == [0, 0, 2, 0, 3]
    assert plan.scored.tolist() == [4, 4, 2, 4, 1]  # 10 + 0 + 5 targets
    assert plan.n_scored([0, 2]) == 6 and plan.n_scored(np.array([3, 4])) == 5


def test_scored_sums_to_the_targets_of_each_document():
    lengths = [0, 1, 2, 3, 17, 100, 257]
    plan = WindowPlan.of(plan_windows(n, 16, 5) for n in lengths)
    per_doc = np.bincount(plan.doc, weights=plan.scored, minlength=len(lengths))
    assert per_doc.tolist() == [max(n - 1, 0) for n in lengths]


def test_one_contiguous_int64_block_of_five_columns():
    plan = WindowPlan.of([plan_windows(1000, 8, 3)] * 3)
    cols = [getattr(plan, c) for c in COLUMNS]
    assert COLUMNS == ("doc", "index", "start", "length", "score_from")
    assert all(c.dtype == np.int64 and c.flags.c_contiguous for c in cols)
    base = cols[0].base
    assert base is not None and all(c.base is base for c in cols)  # views of one block
    assert base.shape == (5, len(plan)) and base.nbytes == 40 * len(plan)


def test_an_empty_plan_has_empty_columns():
    plan = WindowPlan.of([[], []])
    assert len(plan) == 0 and plan.doc.shape == (0,) and plan.scored.sum() == 0


def test_from_block_reads_columns_in_order():
    block = np.arange(10).reshape(5, 2)
    plan = WindowPlan.from_block(block)
    assert plan.row(1) == PlanRow(1, 3, 5, 7, 9)
