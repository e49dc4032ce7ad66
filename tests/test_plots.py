"""Plots drawn from results data: which panels a figure holds (the figure is caught before it becomes a PNG)."""

import pytest

from lm_eval_it import plots


def _cal(ece):
    bins = [{"low": b / 15, "high": (b + 1) / 15, "count": 10, "confidence": (b + 0.5) / 15,
             "accuracy": min(1.0, (b + 0.5) / 15 + 0.1)} for b in range(15)]
    return {"reliability": bins, "ece_equal_width": ece, "direction": "under-confident"}


def _row(model, near):
    c1 = _cal(0.1)
    return {"model": model, "temperature": {
        "calibration_T1": c1,
        "best": {"calibration_at_temperature": near, "calibration": c1 if near == 1.0 else _cal(0.05)}}}


@pytest.fixture
def figure(monkeypatch):
    monkeypatch.setattr(plots, "_png", lambda fig: fig)
    yield lambda rows: plots.reliability_diagram(rows)
    plots.plt.close("all")


def _titles(fig):
    return [ax.get_title() for ax in fig.axes if ax.get_visible()]


def test_reliability_draws_t1_once_when_the_nearest_swept_t_is_1(figure):
    titles = _titles(figure([_row("m", 1.0)]))
    assert len(titles) == 1 and titles[0].startswith("m · T = 1\n")


def test_reliability_draws_both_panels_when_the_best_t_is_elsewhere(figure):
    rows = [_row("a", 1.0), _row("b", 1.3)]
    titles = _titles(figure(rows))
    assert len(titles) == len(set(titles)) == 3
    assert [t.split("\n")[0] for t in titles] == ["a · T = 1", "b · T = 1", "b · T = 1.3 (nearest the best T)"]
