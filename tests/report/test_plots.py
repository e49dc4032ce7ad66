"""plots: the comparison dot plot spans the data; the reliability diagram draws each panel once."""

import pytest

from lm_eval_it.report import plots


def close_table():
    """Two models 0.0010 bits/byte apart, the Δ significant: the case a bar chart from 0 hides."""
    delta = {"delta": 0.0010, "low": 0.0006, "high": 0.0014, "significant": True, "few_documents": False}
    return {"dataset": "wiki", "baseline": "a", "rows": [
        {"model": "a", "bits_per_byte": 0.9848, "bits_per_byte_ci": [0.9790, 0.9905], "delta": None},
        {"model": "b", "bits_per_byte": 0.9858, "bits_per_byte_ci": [0.9801, 0.9916], "delta": delta}]}


def drawn(monkeypatch, table):
    figs = []
    monkeypatch.setattr(plots, "_png", lambda fig: figs.append(fig) or b"\x89PNG")
    assert plots.comparison_plot(table) == b"\x89PNG"
    return figs[0]


def test_comparison_plot_dots_with_intervals_on_a_fitted_range(monkeypatch):
    fig = drawn(monkeypatch, close_table())
    left, right = fig.axes
    lo, hi = left.get_xlim()
    assert 0.97 < lo < 0.9790 and 0.9916 < hi < 1.0  # the whiskers fit, 0 is far outside
    assert (0.9858 - 0.9848) / (hi - lo) > 0.06  # 0.001 apart is visible: 6.8% of the axis, not 0.1%
    assert not left.patches  # dots, no bars
    dlo, dhi = right.get_xlim()
    assert dlo < 0 < 0.0014 < dhi and dhi - dlo < 0.003  # the Δ axis shows 0 and the paired interval
    assert [t.get_text() for t in left.get_yticklabels()] == ["b", "a"]  # the best on top


def test_fitted_range_covers_every_value_and_interval_end():
    lo, hi = plots.fitted_range([0.9848, 0.9858, None, float("nan")], [[0.9790, 0.9905], None, [0.9801, 0.9916]])
    assert lo == pytest.approx(0.9790 - 0.08 * 0.0126) and hi == pytest.approx(0.9916 + 0.08 * 0.0126)
    assert plots.fitted_range([2.0], [None]) == pytest.approx((2.0 - 0.08 * 0.02, 2.0 + 0.08 * 0.02))
    assert plots.fitted_range([], []) == (0.0, 1.0)


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


def _wide_gap_row():
    """A convex NLL(β) = (β − 3.3)² + 12 measured at T = 1, 0.5, 0.1 only: the best T (≈ 0.303) falls in the
    wide gap [0.1, 0.5], where no NLL was measured."""
    import math

    import numpy as np

    from lm_eval_it.stats.temperature.best import best_from_points

    betas = np.array([1.0, 2.0, 10.0])
    best = best_from_points(betas, (betas - 3.3) ** 2 + 12, 2 * (betas - 3.3), np.full(3, 2.0))
    assert best["method"] == "interpolated"
    block = {"temperature": best["temperature"], "method": "interpolated",
             "nll_bits_per_token": best["nll_sum"] / math.log(2),
             "nll_bits_per_token_interval": [v / math.log(2) for v in best["nll_interval"]],
             "temperature_interval": best["temperature_interval"],
             "nll_measured_at_temperature": best["nll_upper_at_temperature"]}
    per = [{"temperature": 1 / b, "nll_bits_per_token": ((b - 3.3) ** 2 + 12) / math.log(2),
            "entropy_bits_per_token": 1.0} for b in betas]
    return {"model": "m", "dataset": "d", "temperature": {"per_temperature": per, "best": block}}


def test_best_temperature_star_is_a_measured_point_and_the_certain_box_holds_the_minimum(monkeypatch):
    import math

    row = _wide_gap_row()
    b = row["temperature"]["best"]
    figs = []
    monkeypatch.setattr(plots, "_png", lambda fig: figs.append(fig) or b"\x89PNG")
    assert plots.temperature_curves([row]) == b"\x89PNG"
    ax = figs[0].axes[0]
    (star,) = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    x, y = star.get_xdata()[0], star.get_ydata()[0]
    assert x == pytest.approx(0.5) and y == pytest.approx(((2 - 3.3) ** 2 + 12) / math.log(2))   # measured at T = 0.5
    assert x != pytest.approx(b["temperature"])           # not the estimated T paired with an NLL measured elsewhere
    (box,) = ax.collections[:1]
    verts = box.get_paths()[0].vertices
    t_lo, t_hi = b["temperature_interval"]
    assert verts[:, 0].min() == pytest.approx(t_lo) and verts[:, 0].max() == pytest.approx(t_hi)
    assert t_lo <= 1 / 3.3 <= t_hi                                                     # the true best T
    assert verts[:, 1].min() <= 12 / math.log(2) <= verts[:, 1].max()                  # the true minimum NLL
    star_exact, box_exact = plots.best_marks(dict(b, method="exact", temperature=0.303), 1.0)
    assert box_exact is None and star_exact[:2] == (0.303, b["nll_bits_per_token"])
