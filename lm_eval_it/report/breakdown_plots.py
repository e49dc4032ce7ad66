"""Figures that break a dataset down: bits/token by context length, and bits/byte (or Δ) per group.

* :func:`context_length_plot` - bits/token against context length (log x), one line
  per model, lengths seen only in documents' first windows shaded, each bin's token
  count shown and bins under the minimum count greyed out;
* :func:`group_plot` - per-group Δ bits/byte against a baseline (or bits/byte), sorted.

Both return PNG bytes, or None when no row carries the data; both are also importable from
:mod:`lm_eval_it.report.plots`.

Example::

    >>> cl = {"tokens_after_first_window": 0, "window": 64}   # no document had a second window
    >>> _first_window_span(cl)[0]
    64.5
"""

from __future__ import annotations

from lm_eval_it.report.plotting import err, png, pyplot
from lm_eval_it.stats.context.bins import MIN_BIN_TOKENS
from lm_eval_it.stats.intervals import INTERVAL_LABEL


def _first_window_span(cl: dict) -> tuple[float, str] | None:
    """The lengths seen only in documents' first windows, to shade: (upper edge, legend), from the counts."""
    if cl.get("tokens_after_first_window") is None:  # not counted (older results): what the plan allows
        if cl.get("observed_range") and cl["stride"] < cl["window"]:
            lo = cl["observed_range"][0]
            return lo - 0.5, f"lengths < {lo}: only in first windows (hollow: bin partly or wholly there)"
        return None
    if not cl["tokens_after_first_window"]:
        return cl["window"] + 0.5, "no document had a second window: every length only in first windows"
    lo = cl["after_first_window_range"][0]
    return (lo - 0.5, f"lengths < {lo}: only in first windows (hollow: bin partly or wholly there)") if lo > 1 else None


def context_length_plot(rows: list[dict]) -> bytes | None:
    """One dataset's rows: bits/token per context-length bin (x at the bin's geometric centre).

    Hollow markers: bins holding lengths scored only in documents' first windows (``coverage``, counted
    from the windows that ran), those lengths shaded; grey markers: bins with fewer than the minimum
    tokens (``below_min_tokens``); each marker is labelled with its bin's token count."""
    rows = [r for r in rows if r.get("context_length")]
    if not rows:
        return None
    fig, ax = pyplot().subplots(figsize=(7.5, 4.2))
    for i, r in enumerate(rows):
        bins = [b for b in r["context_length"]["bins"] if b["tokens"]]
        x = [(b["lo"] * b["hi"]) ** 0.5 for b in bins]
        y = [b["bits_per_token"] for b in bins]
        few = [bool(b.get("below_min_tokens", b["tokens"] < MIN_BIN_TOKENS)) for b in bins]
        ax.plot(x, y, color=f"C{i}", lw=1.5, label=r["model"])
        for part, color in ((False, f"C{i}"), (True, "0.7")):  # intervals of bins with too few tokens in grey
            pick = [k for k, f in enumerate(few) if f == part]
            if pick:
                yy = [y[k] for k in pick]
                ax.errorbar([x[k] for k in pick], yy, yerr=err(yy, [bins[k]["bits_per_token_interval"] for k in pick]),
                            fmt="none", ecolor=color, capsize=3, lw=1.2)
        edge = ["0.6" if f else f"C{i}" for f in few]
        fill = ["white" if b.get("coverage") not in ("steady", None) else e for b, e in zip(bins, edge)]
        ax.scatter(x, y, s=28, zorder=3, color=fill, edgecolors=edge)
        for xi, yi, b, f in zip(x, y, bins, few):
            ax.annotate(str(b["tokens"]), (xi, yi), textcoords="offset points", xytext=(5, 3), ha="left",
                        fontsize=6, color="0.5" if f else f"C{i}")
    span = _first_window_span(rows[0]["context_length"])
    if span:
        ax.axvspan(0.8, span[0], color="0.85", alpha=0.5, lw=0, label=span[1])
    if any(0 < b["tokens"] < MIN_BIN_TOKENS for r in rows for b in r["context_length"]["bins"]):
        ax.scatter([], [], s=28, color="0.6", label=f"grey: fewer than {MIN_BIN_TOKENS} tokens, too few to read")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("context length (tokens the model saw), log scale; numbers: tokens scored in the bin")
    ax.set_ylabel("bits per token")
    ax.set_title(f"NLL by context length · {rows[0]['dataset']} ({INTERVAL_LABEL})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
    return png(fig)


def group_plot(rows: list[dict], comparison: dict | None = None) -> bytes | None:
    """One dataset's grouped rows: Δ bits/byte per group against the comparison's baseline (paired
    intervals, sorted by the first model's Δ), or with no comparison each model's bits/byte (sorted)."""
    rows = [r for r in rows if r.get("groups")]
    entries = [e for e in (comparison or {}).get("rows", []) if e.get("groups")]
    if not rows:
        return None
    if entries:
        order = [g["group"] for g in entries[0]["groups"]["groups"]][::-1]  # smallest Δ (most gained) on top
        series = [(e["model"], {g["group"]: g for g in e["groups"]["groups"]}) for e in entries]
        vals = [[s[g]["delta"] for g in order] for _, s in series]
        ivs = [[[s[g]["low"], s[g]["high"]] if s[g]["low"] is not None else None for g in order] for _, s in series]
        xlabel = f"Δ bits/byte against {comparison['baseline']} (below 0: better), 95% paired t interval"
    else:
        first = rows[0]["groups"]["groups"]
        order = sorted(first, key=lambda g: first[g]["bits_per_byte"], reverse=True)  # lowest on top
        series = [(r["model"], r["groups"]["groups"]) for r in rows]
        vals = [[s[g]["bits_per_byte"] for g in order] for _, s in series]
        ivs = [[s[g]["intervals"].get("bits_per_byte") for g in order] for _, s in series]
        xlabel = "bits/byte (lower is better), 95% t interval within the group"
    n = len(series)
    fig, ax = pyplot().subplots(figsize=(7.5, 1.0 + 0.35 * len(order) * max(n, 1.5)))
    h = 0.8 / n
    for i, ((name, _), v, iv) in enumerate(zip(series, vals, ivs)):
        y = [k + (i - (n - 1) / 2) * h for k in range(len(order))]
        ax.barh(y, v, height=h, xerr=err(v, iv), color=f"C{i}", capsize=3, label=name)
    ax.set_yticks(range(len(order)), [str(g) for g in order])
    if entries:
        ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_title(f"Per group · {rows[0]['dataset']}", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over them
    return png(fig)
