"""Per-group (per-domain) results, micro and macro averages (pure numpy).

Like Paloma, a dataset made of several sources is reported per group as well
as overall. Input is one row per document: ``nll`` (nats), ``tokens``,
``bytes``, ``words``, ``chars`` and ``group``. Each group's metrics come from
:func:`lm_eval_it.metrics.summarize` on that group's summed totals, with
intervals from resampling documents *within* the group.

* **micro** bits/byte: all NLL over all bytes (large groups weigh more).
* **macro** bits/byte: the mean over groups of each group's bits/byte (every
  group weighs the same).

Both intervals come from a stratified bootstrap: each resample redraws the
documents within every group (group sizes stay fixed, as the dataset's design
fixes them). Group ``i`` in sorted order uses
``resample_weights(n_i, resamples, seed + i)``, the same draws as its own
per-group intervals, so micro, macro and per-group figures agree resample by
resample. A comparison of two runs on the same documents uses the same
weights for both runs (paired), per group via :func:`lm_eval_it.stats.paired_delta`.

Example::

    >>> ln2 = math.log(2)
    >>> rows = [dict(group="web", nll=8 * ln2, tokens=4, bytes=8, words=2, chars=8),
    ...         dict(group="web", nll=8 * ln2, tokens=4, bytes=8, words=2, chars=8),
    ...         dict(group="code", nll=4 * ln2, tokens=2, bytes=1, words=1, chars=1)]
    >>> r = group_results(rows, resamples=100)
    >>> r["groups"]["web"]["bits_per_byte"], r["groups"]["code"]["bits_per_byte"]
    (1.0, 4.0)
    >>> round(r["micro"]["bits_per_byte"], 6), r["macro"]["bits_per_byte"]   # 20/17, (1 + 4)/2
    (1.176471, 2.5)
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import Totals, summarize
from .stats import MIN_DOCUMENTS, DEFAULT_RESAMPLES, DEFAULT_SEED, metric_intervals, paired_delta, resample_weights

LN2 = math.log(2.0)
FIELDS = ("nll", "tokens", "bytes", "words", "chars")


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


def _interval(samples: np.ndarray, level: float) -> list[float]:
    alpha = (1.0 - level) / 2.0
    return [float(q) for q in np.quantile(samples, [alpha, 1.0 - alpha])]


def _weights(groups: dict, resamples: int, seed: int) -> list[np.ndarray]:
    return [resample_weights(len(ix), resamples, seed + i) for i, ix in enumerate(groups.values())]


def _column(rows: list[dict], ix: list[int], key: str) -> np.ndarray:
    return np.array([rows[i][key] for i in ix], dtype=np.float64)


def _resampled_sums(rows, groups, weights):
    """``(groups, resamples)`` resampled NLL and byte sums."""
    nll = np.stack([w @ _column(rows, ix, "nll") for w, ix in zip(weights, groups.values())])
    byt = np.stack([w @ _column(rows, ix, "bytes") for w, ix in zip(weights, groups.values())])
    return nll, byt


def _stratified(groups: dict) -> bool:
    """Intervals need some variation: at least one group with 2+ documents."""
    return any(len(ix) >= 2 for ix in groups.values())


def group_results(rows: list[dict], resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                  level: float = 0.95) -> dict:
    """Per-group metrics with intervals, and the micro and macro bits/byte with intervals.

    ``groups[g]`` is :func:`summarize` of the group's totals plus ``intervals``
    (:func:`lm_eval_it.stats.metric_intervals` within the group). ``micro`` is
    :func:`summarize` of all totals plus ``bits_per_byte_interval``; ``macro``
    holds ``bits_per_byte``, ``bits_per_byte_interval`` and ``groups``.
    Intervals are ``None`` when no group has 2 documents.
    """
    if not rows:
        raise ValueError("no documents")
    groups = split_groups(rows)
    per = {}
    for i, (g, ix) in enumerate(groups.items()):
        sub = [rows[j] for j in ix]
        per[g] = {**summarize(_totals(sub)), "intervals": metric_intervals(sub, resamples, seed + i, level)}
    micro = summarize(_totals(rows))
    macro_bpb = float(sum(per[g]["bits_per_byte"] for g in per) / len(per))
    micro_iv = macro_iv = None
    if _stratified(groups):
        nll, byt = _resampled_sums(rows, groups, _weights(groups, resamples, seed))
        micro_iv = _interval(nll.sum(axis=0) / byt.sum(axis=0) / LN2, level)
        macro_iv = _interval((nll / byt / LN2).mean(axis=0), level)
    return {"groups": per,
            "micro": {**micro, "bits_per_byte_interval": micro_iv},
            "macro": {"bits_per_byte": macro_bpb, "bits_per_byte_interval": macro_iv, "groups": len(per)},
            "resamples": resamples, "seed": seed, "level": level}


def compare_groups(rows_a: list[dict], rows_b: list[dict], resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED, level: float = 0.95) -> dict:
    """Δ bits/byte (A − B) per group, paired within each group, sorted by Δ ascending.

    ``rows_a[i]`` and ``rows_b[i]`` must be the same document (same group).
    Each entry of ``groups`` is :func:`paired_delta`'s dict plus ``group`` and
    ``docs``; ``micro`` and ``macro`` give the overall Δ with a paired
    stratified interval (same weights for both runs).
    """
    if len(rows_a) != len(rows_b) or any(a["group"] != b["group"] for a, b in zip(rows_a, rows_b)):
        raise ValueError("paired comparison needs the same documents, in the same order, for both runs")
    if not rows_a:
        raise ValueError("no documents")
    groups = split_groups(rows_a)
    per = []
    for i, (g, ix) in enumerate(groups.items()):
        cols = [_column(rows, ix, k) for rows in (rows_a, rows_b) for k in ("nll", "bytes")]
        d = paired_delta(*cols, resamples=resamples, seed=seed + i, level=level)
        per.append({"group": g, "docs": len(ix), **d})
    per.sort(key=lambda d: d["delta"])

    def bpb(rows):
        return {g: _column(rows, ix, "nll").sum() / _column(rows, ix, "bytes").sum() / LN2
                for g, ix in groups.items()}

    ga, gb = bpb(rows_a), bpb(rows_b)
    ta, tb = _totals(rows_a), _totals(rows_b)
    micro = {"delta": float((ta.nll / ta.bytes - tb.nll / tb.bytes) / LN2), "low": None, "high": None}
    macro = {"delta": float(sum(ga[g] - gb[g] for g in groups) / len(groups)), "low": None, "high": None}
    if _stratified(groups):
        w = _weights(groups, resamples, seed)
        (na, ba), (nb, bb) = _resampled_sums(rows_a, groups, w), _resampled_sums(rows_b, groups, w)
        s_micro = (na.sum(axis=0) / ba.sum(axis=0) - nb.sum(axis=0) / bb.sum(axis=0)) / LN2
        s_macro = ((na / ba - nb / bb) / LN2).mean(axis=0)
        for out, s in ((micro, s_micro), (macro, s_macro)):
            out["low"], out["high"] = _interval(s, level)
    few = len(rows_a) < MIN_DOCUMENTS  # as for the whole dataset: too few documents to call a difference
    for out in (micro, macro):
        out["significant"] = None if out["low"] is None or few else bool(out["low"] > 0 or out["high"] < 0)
        out["few_documents"] = few
    return {"groups": per, "micro": micro, "macro": macro, "resamples": resamples, "seed": seed, "level": level}
