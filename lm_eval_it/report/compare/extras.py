"""Comparison extras: ratio to the best compressor, context gain, per-group Δ bits/byte.

For each model in a comparison table, from the plug-ins' ``compare`` hooks (:func:`lm_eval_it.report.compare.build.build_comparison`):

* ``compression_ratio``: the model's bits/byte ÷ the best compressor's on the same bytes;
* ``gain_64_1024``: bits/token in the 64–127 context bin minus in the 512–1023 bin (positive:
  the long context helps; with a window under 1024, the longest full bin below the window,
  named in ``hi_range``), from ``row["context_length"]["gain_64_1024"]`` when the run stored it
  (:func:`lm_eval_it.stats.context.bins.information_gain`, with a paired document interval; windows over
  128), else from older results' bins holding 64 and 1024 (no interval), else ``None``. A bin
  that scored no tokens gives a gain of ``null``/NaN; :func:`lm_eval_it.report.compare.tables.gain_text` prints it as a dash;
* ``target_rank_1_delta``: the model's share of rank-1 targets minus the baseline's
  (:mod:`lm_eval_it.stats.target_rank`);
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
from lm_eval_it.stats.analyses import group_delta  # noqa: F401 - the old names, kept for importers
from lm_eval_it.stats.context.plugin import context_gain  # noqa: F401
from lm_eval_it.stats.registry import compare_extras


def entry_extras(row: dict, base: dict) -> dict:
    """Every plug-in's fields for one model's comparison entry (:func:`lm_eval_it.stats.registry.compare_extras`)."""
    return compare_extras(row, base)


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
