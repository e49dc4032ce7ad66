"""Reports: results.json (data plus provenance), summary.md, report.html and the terminal table.

Files are written atomically (a temporary file in the same folder, fsync,
then rename), so a reader never sees half a file. Tables are rendered from the
results data, never computed separately. report.html is rendered from the
results dict by the jinja2 templates in ``lm_eval_it/report/templates`` (one
self-contained page: inline CSS, PNG plots as data URIs).

Example::

    >>> rows = [{"model": "m", "dataset": "d", "metrics": {"docs": 1, "tokens": 4, "bytes": 10,
    ...          "token_perplexity": 2.0, "bits_per_token": 1.0, "bits_per_byte": 0.4,
    ...          "bits_per_word": 2.0, "word_perplexity": 4.0, "bits_per_char": 0.4},
    ...          "timing": {"tokens_per_second": 100.0}}]
    >>> print(markdown_table(rows).splitlines()[2])
    | m | d | 1 | 4 | 10 | 2.000 | 1.0000 | 0.4000 | 2.0000 | 4.00 | 0.4000 | 100 |
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from markupsafe import Markup

from lm_eval_it.io import atomic_write_bytes, atomic_write_text
from lm_eval_it.report.compare.build import comparison_sections
from lm_eval_it.report.headers import protocol_text, same_text_note
from lm_eval_it.report.html import render
from lm_eval_it.report.sections import insights_sections, markdown_sections
from lm_eval_it.stats.intervals import INTERVAL_LABEL_ONE
from lm_eval_it.stats.temperature.plugin import sweep_markdown  # noqa: F401 - the old name, kept for importers
from lm_eval_it.report.views_sections import report_sections

COLUMNS = [
    ("model", "model", None),
    ("dataset", "dataset", None),
    ("docs", "docs", "{:d}"),
    ("tokens", "tokens", "{:d}"),
    ("bytes", "bytes", "{:d}"),
    ("token ppl", "token_perplexity", "{:.3f}"),
    ("bits/token", "bits_per_token", "{:.4f}"),
    ("bits/byte", "bits_per_byte", "{:.4f}"),
    ("bits/word", "bits_per_word", "{:.4f}"),
    ("word ppl", "word_perplexity", "{:.2f}"),
    ("bits/char", "bits_per_char", "{:.4f}"),
    ("tok/s", "tokens_per_second", "{:.0f}"),
]


atomic_write = atomic_write_text  # the old name, kept for importers


def _json_default(obj):
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj):
    """Replace NaN/inf by None: strict JSON has no such numbers."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def write_json(path: Path, data: dict) -> None:
    atomic_write(path, json.dumps(_clean(data), indent=1, default=_json_default) + "\n")


def _pairs(row: dict) -> list[tuple[str, str | None]]:
    """(value, interval) per column, formatted; the interval is ``low–high`` or None."""
    values = {"model": row["model"], "dataset": row["dataset"], **row["metrics"], **row.get("timing", {})}
    intervals = row.get("intervals") or {}
    out = []
    for _, key, fmt in COLUMNS:
        v, iv = values.get(key), intervals.get(key)
        cell = "–" if v is None else (fmt.format(v) if fmt else str(v))
        out.append((cell, f"{fmt.format(iv[0])}–{fmt.format(iv[1])}" if iv and v is not None else None))
    return out


def _cells(row: dict) -> list[str]:
    """Formatted cells; a metric with an interval shows it as ``value (low–high)``."""
    return [v if iv is None else f"{v} ({iv})" for v, iv in _pairs(row)]


def markdown_table(rows: list[dict]) -> str:
    head = [c[0] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if c[2] is None else "--:" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, keeping both ends (names differ at either).

    >>> shorten("HuggingFaceTB/SmolLM2-135M-Instruct @ quick/2026-01-01T00-00-00", 28)
    'HuggingFaceTB/SmolL…00-00-00'
    """
    if len(text) <= width:
        return text
    tail = min(8, width // 3)
    return text[: width - 1 - tail] + "…" + text[len(text) - tail:]


TEXT_ORDER = ["model", "dataset", "bits_per_byte", "bits_per_token", "token_perplexity", "bits_per_word",
              "word_perplexity", "bits_per_char", "docs", "tokens", "bytes", "tokens_per_second"]
NAME_WIDTHS = {"model": 28, "dataset": 16}


def text_table(rows: list[dict], width: int = 120) -> str:
    """The terminal table, at most ``width`` columns wide.

    Each interval sits on the line under its value; model and dataset names are
    shortened (:data:`NAME_WIDTHS`); bits/byte comes first, counts last, and
    columns that do not fit wrap into a second band that repeats model and dataset.
    """
    pairs = [_pairs(r) for r in rows]
    cols = []  # (header, [(value, interval)], width, is_name)
    for key in TEXT_ORDER:
        i = next(k for k, c in enumerate(COLUMNS) if c[1] == key)
        cells = [(shorten(p[i][0], NAME_WIDTHS[key]) if key in NAME_WIDTHS else p[i][0], p[i][1] or "")
                 for p in pairs]
        w = max([len(COLUMNS[i][0])] + [max(len(v), len(iv)) for v, iv in cells])
        cols.append((COLUMNS[i][0], cells, w, key in NAME_WIDTHS))
    names, metrics = [c for c in cols if c[3]], [c for c in cols if not c[3]]
    base = sum(c[2] for c in names) + 2 * (len(names) - 1)
    bands, band, used = [], [], base
    for c in metrics:
        if band and used + 2 + c[2] > width:
            bands.append(band)
            band, used = [], base
        band.append(c)
        used += 2 + c[2]
    bands.append(band)

    def line(cs, texts):
        return "  ".join(t.ljust(c[2]) if c[3] else t.rjust(c[2]) for c, t in zip(cs, texts)).rstrip()

    out = []
    for band in bands:
        cs = names + band
        out.append(line(cs, [c[0] for c in cs]))
        for k in range(len(rows)):
            out.append(line(cs, [c[1][k][0] for c in cs]))
            if any(c[1][k][1] for c in band):
                out.append(line(cs, [("" if c[3] else c[1][k][1]) for c in cs]))
        out.append("")
    return "\n".join(out).rstrip("\n")


def summary_markdown(results: dict) -> str:
    lines = [
        f"# {results['run_name']}",
        "",
        f"Created {results['created']} · device {results['provenance']['device']} · "
        f"{protocol_text(results, code=True)} · "
        f"lm_eval_it {results['provenance']['versions'].get('lm_eval_it')} "
        f"(commit {results['provenance'].get('git_commit')})",
        "",
        markdown_table(results["results"]),
        "",
        "In brackets: 95% intervals over documents (linearised variance, Student-t with Bell–McCaffrey degrees "
        "of freedom; no resampling, documents that scored nothing left out). "
        "Token-level figures (token ppl, bits/token) compare only models that share a tokenizer; "
        + same_text_note(results),
    ]
    note = empty_skipped_note(results.get("datasets") or [])
    return "\n".join(lines + (["", note] if note else [])) + "\n"


def empty_skipped_note(datasets: list[dict]) -> str:
    """How many empty documents each dataset skipped, in one sentence ('' when none did).

    >>> empty_skipped_note([{"name": "a", "skipped_empty": 1}, {"name": "b", "skipped_empty": 0}])
    'a: 1 empty document skipped.'
    """
    parts = [f"{d['name']}: {n} empty document{'' if n == 1 else 's'} skipped"
             for d in datasets if (n := d.get("skipped_empty"))]
    return "; ".join(parts) + "." if parts else ""


# ----------------------------------------------------------------------------- HTML

def report_html(results: dict, pngs: dict[str, bytes] | None = None,
                extra_sections: list[tuple[str, str]] = (), folder: Path | None = None) -> str:
    """report.html from the results dict: metrics with intervals, comparison, every plug-in's sections in
    their HTML order (:mod:`lm_eval_it.stats.registry`), with the run ``folder`` the token-level views of the
    rows that recorded them (:func:`lm_eval_it.report.views_sections.report_sections`), plots, then
    ``extra_sections`` - (title, HTML) pairs, appended as they are."""
    comparison = [(f"Comparison · {t}", Markup(h)) for t, h in comparison_sections(results.get("comparison") or [])]
    metrics = {"headers": [c[0] for c in COLUMNS], "left": 2,
               "rows": [[{"value": v, "interval": iv} for v, iv in _pairs(r)] for r in results["results"]]}
    plots = ((results.get("config") or {}).get("output") or {}).get("plots", True)
    insights = [(t, Markup(h)) for t, h in insights_sections(results, plots=plots) + report_sections(results, folder)]
    return render("report.html.j2", title=f"lm_eval_it · {results['run_name']}", results=results, metrics=metrics,
                  protocol=protocol_text(results), same_text=same_text_note(results), interval_label=INTERVAL_LABEL_ONE,
                  comparison=comparison, insights=insights, pngs=pngs or {}, sections=extra_sections)


def write_run(folder: Path, results: dict, pngs: dict[str, bytes] | None = None, extra_md: str = "",
              extra_sections: list[tuple[str, str]] = ()) -> None:
    """results.json, summary.md, plots (PNG) and report.html; results.json goes last.

    ``extra_md`` (the comparison) follows the header in summary.md, then every plug-in's section in its
    Markdown order; report.html renders the comparison and the sections from ``results`` itself, plus
    ``extra_sections`` ((title, HTML) pairs)."""
    pngs = pngs or {}
    summary = summary_markdown(results) + ("\n" + extra_md if extra_md else "")
    for _, section in markdown_sections(results["results"]):
        summary += "\n" + section
    for name, png in pngs.items():
        atomic_write_bytes(folder / name, png)
    atomic_write(folder / "summary.md", summary)
    atomic_write(folder / "report.html", report_html(results, pngs, extra_sections, folder))
    write_json(folder / "results.json", results)
