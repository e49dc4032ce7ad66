"""Comparison extras (issue #14): ratio to the best compressor, context gain, per-group Δ bits/byte.

For each model in a comparison table (:func:`lm_eval_it.report.compare.build.build_comparison`):

* ``compression_ratio``: the model's bits/byte ÷ the best compressor's on the same bytes;
* ``gain_64_1024``: bits/token in the 64–127 context bin minus in the 512–1023 bin (positive:
  the long context helps; with a window under 1024, the longest full bin below the window,
  named in ``hi_range``), from ``row["context_length"]["gain_64_1024"]`` when the run stored it
  (:func:`lm_eval_it.stats.context.bins.information_gain`, with a paired document interval; windows over
  128), else from older results' bins holding 64 and 1024 (no interval), else ``None``. A bin
  that scored no tokens gives a gain of ``null``/NaN; :func:`lm_eval_it.report.compare.tables.gain_text` prints it as a dash;
* ``groups``: for a grouped dataset, :func:`lm_eval_it.stats.groups.compare_groups` of the model
  against the baseline on their per-document rows (paired t intervals within each group;
  micro and macro Δ), ``None`` for the baseline itself.

Example::

    >>> bins = [{"lo": 64, "hi": 127, "tokens": 5, "bits_per_token": 3.0},
    ...         {"lo": 1024, "hi": 2047, "tokens": 5, "bits_per_token": 2.5}]
    >>> context_gain({"bins": bins})["gain"]
    0.5
"""

from __future__ import annotations

from lm_eval_it.numfmt import num as _f
from lm_eval_it.report.compare.tables import delta_cells
from lm_eval_it.stats.groups import compare_groups


def context_gain(cl: dict | None, lo: int = 64, hi: int = 1024) -> dict | None:
    if not cl:
        return None
    if cl.get(f"gain_{lo}_{hi}"):
        return cl[f"gain_{lo}_{hi}"]
    b_lo = next((b for b in cl["bins"] if b["lo"] <= lo <= b["hi"] and b["tokens"]), None)
    b_hi = next((b for b in cl["bins"] if b["lo"] <= hi <= b["hi"] and b["tokens"]), None)
    if b_lo is None or b_hi is None:
        return None
    return {"lo": lo, "hi": hi, "bits_per_token_lo": b_lo["bits_per_token"],
            "bits_per_token_hi": b_hi["bits_per_token"], "gain": b_lo["bits_per_token"] - b_hi["bits_per_token"], "interval": None}


def group_delta(row: dict, base: dict) -> dict | None:
    """Per-group Δ bits/byte of ``row`` against ``base`` on the documents both scored (paired by index)."""
    if row is base or not row.get("groups") or not base.get("groups"):
        return None
    a = {d["index"]: d for d in row["per_document"] if d.get("group") is not None}
    b = {d["index"]: d for d in base["per_document"] if d.get("group") is not None}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    out = compare_groups([a[i] for i in common], [b[i] for i in common])
    for g in out["groups"]:
        g["bits_per_byte"] = row["groups"]["groups"][g["group"]]["bits_per_byte"]
        g["baseline_bits_per_byte"] = base["groups"]["groups"][g["group"]]["bits_per_byte"]
    return out


def entry_extras(row: dict, base: dict) -> dict:
    comp = row.get("compression") or {}
    return {"compression_ratio": comp.get("model_to_best_ratio"), "best_compressor": comp.get("best"),
            "gain_64_1024": context_gain(row.get("context_length")), "groups": group_delta(row, base)}


# ----------------------------------------------------------------------------- rendering

GROUP_HEADERS = ["group", "docs", "bits/byte", "baseline bits/byte", "Δ bits/byte", "Δ 95% CI", "significant"]


def group_rows(e: dict) -> list[list[str]]:
    """Rows of one model's per-group Δ table (sorted by Δ), then micro and macro."""

    gd = e["groups"]
    out = [[str(g["group"]), str(g["docs"]), _f(g["bits_per_byte"]), _f(g["baseline_bits_per_byte"]), *delta_cells(g)]
           for g in gd["groups"]]
    for name in ("micro", "macro"):
        out.append([f"{name} Δ", "", "", "", *delta_cells(gd[name])])
    return out


def group_tables(t: dict) -> list[tuple[str, dict]]:
    """(title, table) per non-baseline model of a grouped comparison table."""
    return [(f"Per-group Δ bits/byte · {e['model']} − {t['baseline']}",
             {"headers": GROUP_HEADERS, "rows": group_rows(e)}) for e in t["rows"] if e.get("groups")]


GROUP_NOTE = ("Δ per group: paired 95% Student-t interval over the group's documents (linearised variance); micro "
              "Δ: over all bytes, the dataset's Δ and interval; macro Δ: mean of the groups' Δ, its variance from "
              "each group's own spread (conservative Welch df). A group with fewer than 2 scored documents is too "
              "small for a variance of its own (– in its row) and then the macro Δ has no interval and is never "
              "significant; the macro Δ is marked significant only with at least 9 documents beyond one per group.")


INSIGHT_NOTE = ("÷ best compressor: the model's bits/byte over the best general-purpose compressor's on the same "
                "bytes; gain 64→1024: bits/token in the 64–127-token context bin minus in the 512–1023 bin "
                "(positive: the longer context helps), with a paired 95% t interval over documents (linearised); "
                "with a window under "
                "1024 the cell names the two bins it compares instead, e.g. (64–127 → 256–511); – when there is "
                "no such pair (a window of 128 or less) or one of the two bins scored no tokens.")


def groups_csv(tables: list[dict]) -> str:
    """comparison_groups.csv: one line per model × group (and micro, macro) of grouped datasets; '' if none."""
    import csv
    import io

    rows = group_csv_rows(tables)
    if not rows:
        return ""
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def group_csv_rows(tables: list[dict]) -> list[list]:
    head = ["dataset", "model", "baseline", "group", "docs", "bits_per_byte", "baseline_bits_per_byte", "delta_bpb",
            "delta_low", "delta_high", "significant"]
    out = [head]
    for t in tables:
        for e in t["rows"]:
            if not e.get("groups"):
                continue
            for g in e["groups"]["groups"]:
                out.append([t["dataset"], e["model"], t["baseline"], g["group"], g["docs"], g["bits_per_byte"],
                            g["baseline_bits_per_byte"], g["delta"], g["low"], g["high"], g["significant"]])
            for name in ("micro", "macro"):
                d = e["groups"][name]
                out.append([t["dataset"], e["model"], t["baseline"], f"({name})", None, None, None, d["delta"],
                            d["low"], d["high"], d["significant"]])
    return out if len(out) > 1 else []
