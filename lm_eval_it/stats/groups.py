"""Per-group (per-domain) results, micro and macro averages (pure numpy).

Like Paloma, a dataset made of several sources is reported per group as well
as overall. Input is one row per document: ``nll`` (nats), ``tokens``,
``bytes``, ``words``, ``chars`` and ``group``. Each group's metrics come from
:func:`lm_eval_it.stats.metrics.summarize` on that group's summed totals.

* **micro** bits/byte: all NLL over all bytes (large groups weigh more). It *is* the
  dataset's bits/byte, so it carries the dataset's interval
  (:func:`lm_eval_it.stats.intervals.metric_intervals` over all documents): one figure, one interval.
* **macro** bits/byte: the mean over groups of each group's bits/byte (every group
  weighs the same). Its variance is ``Σ_g Var(R_g) / G²`` with each ``Var(R_g)`` from that
  group's **own** documents (linearised, Bell–McCaffrey scale and df per group), and the
  smaller of the Welch–Satterthwaite df and the smallest group's df (:func:`macro_mean`), so
  groups with different spreads keep their own. A group with fewer than 2 scored documents has
  no spread of its own (``too_small_for_variance``): the macro figure then has no interval, and
  no macro Δ is called significant.
* Per-group intervals use only the group's own documents (``None`` for a group too small).

Significance: a per-group or micro Δ as :func:`lm_eval_it.stats.intervals.paired_delta` (at least
:data:`~lm_eval_it.stats.intervals.MIN_DOCUMENTS` documents); a macro Δ needs ``N − G ≥ MIN_DOCUMENTS − 1``
residual degrees of freedom, as many as a dataset of ``MIN_DOCUMENTS`` ungrouped documents has,
and no group ``too_small_for_variance``.

Example::

    >>> ln2 = math.log(2)
    >>> rows = [dict(group="web", nll=8 * ln2, tokens=4, bytes=8, words=2, chars=8),
    ...         dict(group="web", nll=8 * ln2, tokens=4, bytes=8, words=2, chars=8),
    ...         dict(group="code", nll=4 * ln2, tokens=2, bytes=1, words=1, chars=1)]
    >>> r = group_results(rows)
    >>> r["groups"]["web"]["bits_per_byte"], r["groups"]["code"]["bits_per_byte"]
    (1.0, 4.0)
    >>> round(r["micro"]["bits_per_byte"], 6), r["macro"]["bits_per_byte"]   # 20/17, (1 + 4)/2
    (1.176471, 2.5)
    >>> r["groups"]["code"]["too_small_for_variance"], r["macro"]["groups_too_small_for_variance"]
    (True, ['code'])
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.stats.intervals import (
    METHOD,
    MIN_DOCUMENTS,
    metric_intervals,
    paired_delta,
    paired_residuals,
    scored_mask,
    size_correction,
    t_interval,
)
from lm_eval_it.stats.metrics import Totals, summarize

LN2 = math.log(2.0)
FIELDS = ("nll", "tokens", "bytes", "words", "chars")
MACRO_METHOD = "separate_linearised_t"  # each group's own linearised variance, conservative Welch df, Student-t


def split_groups(rows: list[dict]) -> dict:
    """``{group: [row indices]}`` with groups in sorted order (by ``str``)."""
    out: dict = {}
    for i, r in enumerate(rows):
        out.setdefault(r["group"], []).append(i)
    return {g: out[g] for g in sorted(out, key=str)}


def _totals(rows: list[dict]) -> Totals:
    t = Totals()
    for r in rows:
        t = t + Totals(nll=float(r["nll"]), tokens=int(r["tokens"]), bytes=int(r["bytes"]),
                       words=int(r["words"]), chars=int(r["chars"]), docs=1)
    return t


def _column(rows: list[dict], ix: list[int], key: str) -> np.ndarray:
    return np.array([rows[i][key] for i in ix], dtype=np.float64)


def _scored(rows: list[dict], ix: list[int]) -> list[int]:
    return [i for i in ix if rows[i]["tokens"] > 0]


def macro_mean(parts: list[tuple[float, np.ndarray, np.ndarray]], level: float = 0.95) -> dict:
    """Mean of per-group ratios with a t interval from each group's **own** spread.

    ``parts``: per group ``(ratio, residuals e_i, sizes x_i)`` (nats; ``e = num − ratio·size``).
    Each group contributes ``v_g = scale_g Σ e² / (Σ x)²`` with its own Bell–McCaffrey
    ``(scale_g, df_g)`` (:func:`lm_eval_it.stats.intervals.size_correction`), so a noisy group is never
    given a quiet group's spread; ``Var(mean) = Σ_g v_g / G²``. The degrees of freedom are the
    smaller of Welch–Satterthwaite's ``(Σ v_g)² / Σ (v_g² / df_g)`` and the smallest ``df_g``
    (Hsu's conservative choice: Welch–Satterthwaite alone is liberal when a group of 2 or 3
    documents carries most of the variance). ``low``/``high`` ``None`` when a group has fewer than
    2 documents: it has no spread of its own, and none is assumed for it.
    """
    g = len(parts)
    est = sum(p[0] for p in parts) / g
    out = {"estimate": est, "low": None, "high": None, "se": None, "df": None, "method": MACRO_METHOD}
    if not parts or any(x.size < 2 for _, _, x in parts):
        return out
    var, dfs = [], []
    for _, e, x in parts:
        scale, df_g = size_correction(x)
        var.append(scale * float((e * e).sum()) / float(x.sum()) ** 2)
        dfs.append(df_g)
    total = sum(var)
    welch = total * total / sum(v * v / d for v, d in zip(var, dfs)) if total > 0 else min(dfs)
    df = min(welch, min(dfs))
    se = math.sqrt(total) / g
    out["low"], out["high"] = t_interval(est, se, df, level)
    out.update(se=se, df=df)
    return out


def _bits(d: dict) -> dict:
    return {k: (None if d[k] is None else d[k] / LN2) for k in ("estimate", "low", "high", "se")} | {
        "df": d["df"], "method": d["method"]}


def group_results(rows: list[dict], level: float = 0.95) -> dict:
    """Per-group metrics with intervals, and the micro and macro bits/byte with intervals.

    ``groups[g]`` is :func:`summarize` of the group's totals plus ``intervals``
    (:func:`lm_eval_it.stats.intervals.metric_intervals` within the group) and ``too_small_for_variance``.
    ``micro`` is :func:`summarize` of all totals plus ``bits_per_byte_interval`` (the dataset's),
    ``se``, ``df``, ``method``; ``macro`` holds ``bits_per_byte``, ``bits_per_byte_interval``, ``se``,
    ``df``, ``method``, ``groups`` and ``groups_too_small_for_variance``.
    """
    if not rows:
        raise ValueError("no documents")
    groups = split_groups(rows)
    per, parts, small = {}, [], []
    for g, ix in groups.items():
        sub = [rows[j] for j in ix]
        scored = _scored(rows, ix)
        per[g] = {**summarize(_totals(sub)), "intervals": metric_intervals(sub, level),
                  "too_small_for_variance": len(scored) < 2}
        if len(scored) < 2:
            small.append(g)
        nll, byt = _column(rows, scored, "nll"), _column(rows, scored, "bytes")
        if byt.sum() > 0:
            r = nll.sum() / byt.sum()
            parts.append((r, nll - r * byt, byt))
    overall = metric_intervals(rows, level)
    micro = {**summarize(_totals(rows)), "bits_per_byte_interval": overall["bits_per_byte"],
             "se": overall["se"].get("bits_per_byte"), "df": overall["df"].get("bits_per_byte"), "method": METHOD}
    macro_bpb = float(sum(per[g]["bits_per_byte"] for g in per) / len(per))
    m = _bits(macro_mean(parts, level)) if len(parts) == len(per) else dict.fromkeys(("low", "high", "se", "df"))
    macro = {"bits_per_byte": macro_bpb, "groups": len(per), "groups_too_small_for_variance": small,
             "bits_per_byte_interval": None if m["low"] is None else [m["low"], m["high"]],
             "se": m["se"], "df": m["df"], "method": MACRO_METHOD}
    return {"groups": per, "micro": micro, "macro": macro, "level": level, "resamples": 0, "seed": None,
            "documents_without_scored_tokens": overall["documents_without_scored_tokens"]}


def _significance(out: dict, few: bool) -> None:
    out["few_documents"] = few
    out["significant"] = None if out["low"] is None or few else bool(out["low"] > 0 or out["high"] < 0)


def compare_groups(rows_a: list[dict], rows_b: list[dict], level: float = 0.95) -> dict:
    """Δ bits/byte (A − B) per group, paired within each group, sorted by Δ ascending.

    ``rows_a[i]`` and ``rows_b[i]`` must be the same document (same group).
    Each entry of ``groups`` is :func:`paired_delta`'s dict plus ``group``, ``docs`` and
    ``too_small_for_variance``; ``micro`` is the dataset's paired Δ (all documents) and
    ``macro`` the mean of the groups' Δ with the interval of :func:`macro_mean`.
    """
    if len(rows_a) != len(rows_b) or any(a["group"] != b["group"] for a, b in zip(rows_a, rows_b)):
        raise ValueError("paired comparison needs the same documents, in the same order, for both runs")
    if not rows_a:
        raise ValueError("no documents")
    groups = split_groups(rows_a)
    per, parts = [], []
    for g, ix in groups.items():
        cols = [_column(rows, ix, k) for rows in (rows_a, rows_b) for k in ("nll", "bytes")]
        d = paired_delta(*cols, level=level)
        per.append({"group": g, "docs": len(ix), **d, "too_small_for_variance": d["documents"] < 2})
        keep = scored_mask(*cols)
        if cols[1][keep].sum() > 0 and cols[3][keep].sum() > 0:
            parts.append(paired_residuals(*(c[keep] for c in cols)))
    per.sort(key=lambda d: (not math.isfinite(d["delta"]), d["delta"] if math.isfinite(d["delta"]) else 0.0))
    cols = [_column(rows, list(range(len(rows_a))), k) for rows in (rows_a, rows_b) for k in ("nll", "bytes")]
    micro = paired_delta(*cols, level=level)
    m = _bits(macro_mean(parts, level)) if len(parts) == len(groups) else dict.fromkeys(("low", "high", "se", "df"))
    macro = {"delta": float(sum(d["delta"] for d in per) / len(per)), **{k: m[k] for k in ("low", "high", "se", "df")},
             "method": MACRO_METHOD,
             "groups_too_small_for_variance": [d["group"] for d in per if d["too_small_for_variance"]]}
    residual_docs = sum(max(d["documents"] - 1, 0) for d in per)   # documents beyond one per group
    _significance(macro, residual_docs < MIN_DOCUMENTS - 1)
    return {"groups": per, "micro": micro, "macro": macro, "level": level, "resamples": 0, "seed": None,
            "documents_without_scored_tokens": micro["documents_without_scored_tokens"]}
