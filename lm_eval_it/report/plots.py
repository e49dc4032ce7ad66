"""Plots rendered from results data (matplotlib, Agg, PNG); the one place to import a plot from.

* :func:`temperature_curves` - entropy and NLL (bits/token) against T for every
  model × dataset on one chart, best T marked;
* :func:`reliability_diagram` - accuracy against top-1 confidence at T = 1 and
  at the best T;
* :func:`entropy_histogram` - per-token entropy histograms at a few temperatures;
* :func:`comparison_plot` - one comparison table as a dot plot: bits/byte per model with its
  interval, and Δ bits/byte against the baseline with its paired interval, each x-axis fitted
  to the data (:func:`fitted_range`), so that 0.9848 and 0.9858 look different;
* :func:`context_length_plot` and :func:`group_plot` - one dataset broken down by context
  length and by group (drawn in :mod:`lm_eval_it.report.breakdown_plots`, importable here).

Each returns PNG bytes, so a caller can write them or embed them in HTML. Importing this module
loads no matplotlib (:func:`lm_eval_it.report.plotting.pyplot` does, at the first figure), so a
report module may import it at its top.

Example::

    png = temperature_curves(results["results"])   # bytes, b"\\x89PNG..."

    >>> render_all([{"model": "m", "dataset": "d"}])   # no sweep in the rows: no figure
    {}
"""

from __future__ import annotations

import math
import textwrap

from lm_eval_it.report.breakdown_plots import (  # noqa: F401 - today's names, importable from here
    _first_window_span,
    context_length_plot,
    group_plot,
)
from lm_eval_it.report.plotting import err as _err
from lm_eval_it.report.plotting import png as _png
from lm_eval_it.report.plotting import pyplot

__all__ = ["PLOTS", "best_marks", "comparison_plot", "context_length_plot", "entropy_histogram", "fitted_range",
           "group_plot", "reliability_diagram", "render_all", "temperature_curves"]


def __getattr__(name: str):
    """``plots.plt``: matplotlib.pyplot, imported when first asked for (not when this module is)."""
    if name == "plt":
        return pyplot()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _swept(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("temperature")]


def temperature_curves(rows: list[dict]) -> bytes | None:
    rows = _swept(rows)
    if not rows:
        return None
    fig, ax = pyplot().subplots(figsize=(7.5, 4.5))
    for i, r in enumerate(rows):
        sw, color = r["temperature"], f"C{i}"
        ts = [p["temperature"] for p in sw["per_temperature"]]
        label = f"{r['model']} · {r['dataset']}"
        ax.plot(ts, [p["nll_bits_per_token"] for p in sw["per_temperature"]], "-o", ms=3, color=color,
                label=f"NLL · {label}")
        ax.plot(ts, [p["entropy_bits_per_token"] for p in sw["per_temperature"]], "--", color=color,
                label=f"entropy · {label}")
        star, box = best_marks(sw["best"], max(ts))
        if box:  # where the best T and the minimum NLL certainly lie (convexity), not a guessed point
            ax.fill_between(box[:2], box[2], box[3], color=color, alpha=0.25, lw=0,
                            label=f"best T in [{box[0]:.3g}, {box[1]:.3g}], min NLL in [{box[2]:.4f}, {box[3]:.4f}]"
                                  " (certain)")
            ax.hlines(box[3], box[0], box[1], color=color, lw=2)
        if star:
            ax.plot([star[0]], [star[1]], "*", ms=14, color=color, label=star[2])
    ax.set_xlabel("temperature T")
    ax.set_ylabel("bits per token")
    ax.set_title("Next-token NLL (solid) and entropy (dashed) under softmax(z / T)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: never over the curves
    return _png(fig)


def best_marks(best: dict, t_max: float) -> tuple[tuple | None, tuple | None]:
    """What the plot may claim about the best T: a star at a *measured* (or exact) point with its label, and for
    an interpolated best T the certain box ``(t_lo, t_hi, nll_lo, nll_hi)`` (bits/token; an open upper T end is
    drawn to ``t_max``). The quintic estimate is never drawn as a point: in a wide gap its NLL was not measured
    at its T."""
    t, method = best.get("temperature"), best.get("method", "exact")
    if t is None:
        return None, None
    iv, t_iv = best.get("nll_bits_per_token_interval"), best.get("temperature_interval")
    if method != "interpolated" or not iv or not t_iv:
        return (t, best["nll_bits_per_token"], f"best T = {t:.3f} ({method})"), None
    at = best["nll_measured_at_temperature"]
    box = (float(t_iv[0]), float(t_iv[1] if t_iv[1] is not None else max(t_max, t_iv[0])), float(iv[0]), float(iv[1]))
    return (at, best["nll_bits_per_token"], f"lowest measured NLL (T = {at:g})"), box


def _reliability_panels(sw: dict) -> list[tuple[str, dict]]:
    """(name, calibration) per panel: T = 1, and the swept T nearest the best T unless that is T = 1 again."""
    near, c1 = sw["best"].get("calibration_at_temperature", 1.0), sw["calibration_T1"]
    panels = [("T = 1", c1)] if c1 is not None else []
    if not (near == 1.0 and c1 is not None) and sw["best"].get("calibration") is not None:
        panels.append((f"T = {near:g} (nearest the best T)", sw["best"]["calibration"]))
    return panels


def reliability_diagram(rows: list[dict]) -> bytes | None:
    rows = _swept(rows)
    if not rows:
        return None
    panels = [_reliability_panels(r["temperature"]) for r in rows]
    cols = max(1, max(len(p) for p in panels))
    fig, axes = pyplot().subplots(len(rows), cols, figsize=(4 * cols, 3.6 * len(rows)), squeeze=False)
    for row_axes, r, row_panels in zip(axes, rows, panels):
        for ax in row_axes[len(row_panels):]:
            ax.set_visible(False)
        for ax, (name, cal) in zip(row_axes, row_panels):
            bins = [b for b in cal["reliability"] if b["count"]]
            ax.plot([0, 1], [0, 1], ":", color="gray")
            ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=1 / 15,
                   edgecolor="black", alpha=0.7, label="accuracy")
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", ms=3, color="C3")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("top-1 confidence")
            ax.set_ylabel("top-1 accuracy")
            ax.set_title(f"{r['model']} · {name}\nECE {cal['ece_equal_width']:.4f} ({cal['direction']})", fontsize=9,
                         wrap=True)
    return _png(fig)


def entropy_histogram(rows: list[dict]) -> bytes | None:
    """Histograms of per-token entropy at the lowest, T = 1 and the highest swept temperature."""
    rows = _swept(rows)
    if not rows:
        return None
    fig, axes = pyplot().subplots(1, len(rows), figsize=(5 * len(rows), 3.8), squeeze=False)
    for ax, r in zip(axes[0], rows):
        per_t = r["temperature"]["per_temperature"]
        picks = {id(p): p for p in (per_t[0], next((p for p in per_t if p["temperature"] == 1.0), per_t[0]), per_t[-1])}
        for p in picks.values():
            h = p["entropy_histogram"]
            ax.stairs(h["counts"], h["edges_bits"], label=f"T = {p['temperature']:g}", fill=False, linewidth=1.5)
        ax.set_xlabel("per-token entropy (bits)")
        ax.set_ylabel("tokens")
        ax.set_title(f"{r['model']} · {r['dataset']}", fontsize=9)
        ax.legend(fontsize=7)
    return _png(fig)


def fitted_range(values, intervals, pad: float = 0.08) -> tuple[float, float]:
    """An x-range holding every finite value and interval end, padded by ``pad`` of its span on each side.

    >>> lo, hi = fitted_range([0.9848, 0.9858], [[0.984, 0.9856], [0.985, 0.9866]])
    >>> round(lo, 5), round(hi, 5)
    (0.98379, 0.98681)
    """
    xs = [x for x in values if x is not None and math.isfinite(x)]
    xs += [x for iv in intervals if iv for x in iv if x is not None and math.isfinite(x)]
    if not xs:
        return 0.0, 1.0
    lo, hi = min(xs), max(xs)
    span = hi - lo or max(abs(hi) * 0.01, 1e-3)  # one point: a small range around it
    return lo - pad * span, hi + pad * span


def _dots(ax, vals, ivs, colors, names) -> None:
    y = list(range(len(vals)))
    for k, (v, iv, c) in enumerate(zip(vals, ivs, colors)):
        if v is None or not math.isfinite(v):
            continue
        ax.errorbar([v], [k], xerr=_err([v], [iv]), fmt="o", ms=6, color=c, ecolor=c, elinewidth=1.6, capsize=4)
    ax.set_yticks(y, names)
    ax.set_ylim(-0.6, len(vals) - 0.4)
    ax.set_xlim(*fitted_range(vals, ivs))
    ax.ticklabel_format(axis="x", useOffset=False)  # 0.9848, not +9.8e-1 and an offset
    ax.grid(alpha=0.3, axis="x")


def comparison_plot(table: dict) -> bytes | None:
    """One comparison table (:func:`lm_eval_it.report.compare.build.build_comparison`): bits/byte per model, a dot with its
    95% interval (best on top); beside it Δ bits/byte against the baseline with its paired interval (filled:
    significant; the baseline a hollow mark at 0). Each x-axis spans the data, not 0 to the largest value."""
    rows = table["rows"][::-1]
    if not rows:
        return None
    names = [e["model"] for e in rows]
    deltas = [e["delta"] for e in rows]
    paired = any(d is not None for d in deltas)
    fig, axes = pyplot().subplots(1, 2 if paired else 1, figsize=(10 if paired else 6.5, 1.1 + 0.42 * len(rows)),
                             sharey=True, squeeze=False)
    ax = axes[0][0]
    _dots(ax, [e["bits_per_byte"] for e in rows], [e["bits_per_byte_ci"] for e in rows], ["#4878a8"] * len(rows),
          names)
    ax.set_title("bits per byte, 95% interval\n(lower is better)", fontsize=9)
    if paired:
        ax2 = axes[0][1]
        vals = [0.0 if d is None else d["delta"] for d in deltas]
        ivs = [None if d is None or d.get("low") is None else [d["low"], d["high"]] for d in deltas]
        colors = ["0.6" if d is None else ("#c44e52" if d.get("significant") else "#4878a8") for d in deltas]
        ax2.axvline(0, color="black", lw=0.8)
        _dots(ax2, vals, ivs, colors, names)
        for k, d in enumerate(deltas):
            if d is None:
                ax2.plot([0], [k], "D", ms=7, mfc="white", mec="black", zorder=3)
        ax2.set_title("\n".join(textwrap.wrap(f"Δ bits/byte against {table['baseline']} (◇), 95% paired "
                                             "interval", 48)) + "\n(below 0: better; red: significant)", fontsize=9)
    fig.suptitle(table["dataset"], fontsize=10)
    return _png(fig)


PLOTS = {"temperature_curves.png": temperature_curves, "reliability.png": reliability_diagram,
         "entropy_histogram.png": entropy_histogram}


def render_all(rows: list[dict]) -> dict[str, bytes]:
    """The run-level figures that the rows have data for: file name → PNG bytes."""
    return {name: png for name, fn in PLOTS.items() if (png := fn(rows)) is not None}
