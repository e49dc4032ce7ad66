"""Reports: results.json (data plus provenance), summary.md and the terminal table.

Files are written atomically (a temporary file in the same folder, fsync,
then rename), so a reader never sees half a file. Tables are rendered from the
results data, never computed separately.

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

from .io import atomic_write_bytes, atomic_write_text

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


def _cells(row: dict) -> list[str]:
    """Formatted cells; a metric with a bootstrap interval shows it as ``value (low–high)``."""
    values = {"model": row["model"], "dataset": row["dataset"], **row["metrics"], **row.get("timing", {})}
    intervals = row.get("intervals") or {}
    out = []
    for _, key, fmt in COLUMNS:
        v = values.get(key)
        cell = "–" if v is None else (fmt.format(v) if fmt else str(v))
        iv = intervals.get(key)
        if iv and v is not None:
            cell += f" ({fmt.format(iv[0])}–{fmt.format(iv[1])})"
        out.append(cell)
    return out


def markdown_table(rows: list[dict]) -> str:
    head = [c[0] for c in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if c[2] is None else "--:" for c in COLUMNS) + "|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def text_table(rows: list[dict]) -> str:
    table = [[c[0] for c in COLUMNS]] + [_cells(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(COLUMNS))]
    just = [str.ljust if c[2] is None else str.rjust for c in COLUMNS]
    return "\n".join("  ".join(j(cell, w) for cell, w, j in zip(r, widths, just)) for r in table)


def summary_markdown(results: dict) -> str:
    ev = results["config"]["eval"]
    lines = [
        f"# {results['run_name']}",
        "",
        f"Created {results['created']} · device {results['provenance']['device']} · "
        f"window {ev['window']}, stride {ev['stride']}, prefix {ev['prefix']} · "
        f"lm_eval_it {results['provenance']['versions'].get('lm_eval_it')} "
        f"(commit {results['provenance'].get('git_commit')})",
        "",
        markdown_table(results["results"]),
        "",
        "In brackets: 95% bootstrap intervals over documents (2000 resamples, seed 1234). "
        "Token-level figures (token ppl, bits/token) compare only models that share a tokenizer; "
        "bits/byte, bits/word and bits/char are over the same text for every model.",
    ]
    return "\n".join(lines) + "\n"


def sweep_markdown(rows: list[dict]) -> str:
    """One table per swept model × dataset: entropy and NLL per T, best T, calibration."""
    out = []
    for r in rows:
        sw = r.get("temperature")
        if not sw:
            continue
        b, c1 = sw["best"], sw["calibration_T1"]
        out += [f"#### Temperature sweep · {r['model']} · {r['dataset']}", "",
                "| T | entropy bits/token | NLL bits/token | entropy bits/byte | NLL bits/byte | mean top-1 p |",
                "|--:|--:|--:|--:|--:|--:|"]
        out += [f"| {p['temperature']:g} | {p['entropy_bits_per_token']:.4f} | {p['nll_bits_per_token']:.4f} | "
                f"{p['entropy_bits_per_byte']:.4f} | {p['nll_bits_per_byte']:.4f} | {p['mean_top1_prob']:.4f} |"
                for p in sw["per_temperature"]]
        best_t = f"{b['temperature']:.4f}" if b["temperature"] is not None else "n/a"
        out += ["", f"Best T = {best_t} ({b.get('label', 'grid')}): "
                f"NLL {b['nll_bits_per_token']:.4f} bits/token, {b['nll_bits_per_byte']:.4f} bits/byte."]
        for name, cal in (("T = 1", c1), (f"T = {b.get('calibration_at_temperature', 'best'):g} (swept T nearest "
                                                  "the best)", b["calibration"])):
            if cal:
                out.append(f"Calibration at {name}: ECE {cal['ece_equal_width']:.4f} (15 equal-width bins), "
                           f"{cal['ece_equal_mass']:.4f} (equal-mass); top-1 accuracy {cal['top1_accuracy']:.4f} vs "
                           f"mean confidence {cal['mean_top1_prob']:.4f}; entropy − NLL = "
                           f"{cal['entropy_minus_nll_bits']:+.4f} bits/token ({cal['direction']}).")
        out.append("")
    return "\n".join(out)


CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
       "td,th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child"
       "{text-align:left}th{background:#f4f4f4}.note{color:#555;max-width:60em}img{max-width:100%}")


def html_page(title: str, sections: list[str]) -> str:
    """A self-contained HTML page (inline CSS, images as data URIs)."""
    import html

    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>{''.join(sections)}</body></html>")


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    import html

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_image(png: bytes, alt: str) -> str:
    import base64

    return f"<p><img alt='{alt}' src='data:image/png;base64,{base64.b64encode(png).decode()}'></p>"


def markdown_to_html(md: str) -> str:
    """Just enough Markdown (tables, headings, paragraphs) for our own summaries."""
    import html

    out, table = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split("|")])
            continue
        if table:
            out.append(html_table(table[0], [r for r in table[2:]]))
            table = []
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            out.append(f"<p class='note'>{html.escape(line)}</p>")
    return "".join(out)


def write_run(folder: Path, results: dict, pngs: dict[str, bytes] | None = None, extra_md: str = "") -> None:
    """results.json, summary.md, plots (PNG) and report.html; results.json goes last."""
    pngs = pngs or {}
    summary = summary_markdown(results) + ("\n" + extra_md if extra_md else "")
    sweep = sweep_markdown(results["results"])
    if sweep:
        summary += "\n" + sweep
    for name, png in pngs.items():
        atomic_write_bytes(folder / name, png)
    atomic_write(folder / "summary.md", summary)
    page = [markdown_to_html(summary)] + [html_image(png, name) for name, png in pngs.items()]
    atomic_write(folder / "report.html", html_page(f"lm_eval_it · {results['run_name']}", page))
    write_json(folder / "results.json", results)
