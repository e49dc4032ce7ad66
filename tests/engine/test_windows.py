"""Window planning, checked without a model."""

import itertools

import pytest

from lm_eval_it.engine.windows import Window, min_context, plan_windows


def scored_targets(plan):
    return [t for w in plan for t in w.targets()]


@pytest.mark.parametrize("n,window,stride", itertools.product(
    [0, 1, 2, 3, 5, 8, 9, 10, 17, 33, 100], [1, 2, 4, 8], [1, 2, 3, 4, 8]))
def test_every_target_scored_exactly_once(n, window, stride):
    if stride > window:
        with pytest.raises(ValueError):
            plan_windows(n, window, stride)
        return
    plan = plan_windows(n, window, stride)
    assert scored_targets(plan) == list(range(1, n))  # in order, each once
    for w in plan:
        assert w.start >= 0 and w.start + w.length <= n - 1  # last target S[start+length] exists
        assert 1 <= w.length <= window
        assert 0 <= w.score_from < w.length


@pytest.mark.parametrize("n,window,stride", [(100, 8, 3), (100, 8, 8), (37, 16, 5), (1000, 64, 1)])
def test_context_and_backfill(n, window, stride):
    plan = plan_windows(n, window, stride)
    # first window scores from the start; every later target has >= window - stride + 1 tokens of context
    assert plan[0] == Window(0, window, 0)
    for w in plan[1:]:
        assert w.length == window  # back-filled: later windows are always full
        assert w.score_from + 1 >= window - stride + 1
    assert min_context(plan) == 1
    assert min(w.score_from + 1 for w in plan[1:]) >= window - stride + 1


def test_hand_computed_plans():
    # 10 targets, window 4 = stride: lm-eval's rolling windows, last one back-filled
    assert plan_windows(11, 4, 4) == [Window(0, 4, 0), Window(4, 4, 0), Window(6, 4, 2)]
    # stride 2: every later window re-reads 2 tokens of context
    assert plan_windows(11, 4, 2) == [Window(0, 4, 0), Window(2, 4, 2), Window(4, 4, 2), Window(6, 4, 2)]
    # exact multiple: no partial window
    assert plan_windows(9, 4, 4) == [Window(0, 4, 0), Window(4, 4, 0)]


def test_tiny_and_empty_documents():
    assert plan_windows(0, 4, 4) == []          # empty text, no prefix
    assert plan_windows(1, 4, 4) == []          # prefix only: nothing to score
    assert plan_windows(2, 4, 4) == [Window(0, 1, 0)]   # one token, predicted from the prefix
    assert plan_windows(4, 4, 1) == [Window(0, 3, 0)]   # shorter than the window: one window
    assert min_context([]) == 0


def test_window_count_matches_formula():
    for n, window, stride in [(1025, 1024, 1024), (5000, 1024, 1024), (5000, 1024, 512), (5000, 1024, 256)]:
        plan = plan_windows(n, window, stride)
        extra = max(0, n - 1 - window)
        assert len(plan) == 1 + -(-extra // stride)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError):
        plan_windows(10, 4, 0)
    with pytest.raises(ValueError):
        plan_windows(10, 4, 5)
