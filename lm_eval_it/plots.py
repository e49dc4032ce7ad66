"""Plots rendered from results data (matplotlib, Agg, PNG).

* :func:`temperature_curves` - entropy and NLL (bits/token) against T for every
  model × dataset on one chart, best T marked;
* :func:`reliability_diagram` - accuracy against top-1 confidence at T = 1 and
  at the best T;
* :func:`entropy_histogram` - per-token entropy histograms at a few temperatures.

Each returns PNG bytes, so a caller can write them or embed them in HTML.

Example::

    png = temperature_curves(results["results"])   # bytes, b"\\x89PNG..."
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # long labels are never clipped
    plt.close(fig)
    return buf.getvalue()


def _swept(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("temperature")]


def temperature_curves(rows: list[dict]) -> bytes | None:
    rows = _swept(rows)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, r in enumerate(rows):
        sw, color = r["temperature"], f"C{i}"
        ts = [p["temperature"] for p in sw["per_temperature"]]
        label = f"{r['model']} · {r['dataset']}"
        ax.plot(ts, [p["nll_bits_per_token"] for p in sw["per_temperature"]], "-o", ms=3, color=color,
                label=f"NLL · {label}")
        ax.plot(ts, [p["entropy_bits_per_token"] for p in sw["per_temperature"]], "--", color=color,
                label=f"entropy · {label}")
        b = sw["best"]
        if b["temperature"] is not None:
            ax.plot([b["temperature"]], [b["nll_bits_per_token"]], "*", ms=14, color=color,
                    label=f"best T = {b['temperature']:.3f} ({b.get('method', 'exact')})")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("bits per token")
    ax.set_title("Next-token NLL (solid) and entropy (dashed) under softmax(z / T)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: never over the curves
    return _png(fig)


def reliability_diagram(rows: list[dict]) -> bytes | None:
    rows = _swept(rows)
    if not rows:
        return None
    fig, axes = plt.subplots(len(rows), 2, figsize=(8, 3.6 * len(rows)), squeeze=False)
    for (ax1, ax2), r in zip(axes, rows):
        sw = r["temperature"]
        for ax, cal, name in ((ax1, sw["calibration_T1"], "T = 1"),
                              (ax2, sw["best"]["calibration"],
                               f"T = {sw['best'].get('calibration_at_temperature', 1.0):g} (nearest the best T)")):
            if cal is None:
                ax.set_visible(False)
                continue
            bins = [b for b in cal["reliability"] if b["count"]]
            ax.plot([0, 1], [0, 1], ":", color="gray")
            ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["accuracy"] for b in bins], width=1 / 15,
                   edgecolor="black", alpha=0.7, label="accuracy")
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o", ms=3, color="C3")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("top-1 confidence")
            ax.set_ylabel("top-1 accuracy")
            ax.set_title(f"{r['model']} · {name}\nECE {cal['ece_equal_width']:.4f} ({cal['direction']})", fontsize=9)
    return _png(fig)


def entropy_histogram(rows: list[dict]) -> bytes | None:
    """Histograms of per-token entropy at the lowest, T = 1 and the highest swept temperature."""
    rows = _swept(rows)
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.8), squeeze=False)
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


PLOTS = {"temperature_curves.png": temperature_curves, "reliability.png": reliability_diagram,
         "entropy_histogram.png": entropy_histogram}


def render_all(rows: list[dict]) -> dict[str, bytes]:
    return {name: png for name, fn in PLOTS.items() if (png := fn(rows)) is not None}
