"""What a run prints: one compact table and where the files are; the other tables with ``--details``.

The compact table has one row per model × dataset: documents, tokens, bits per
byte and token perplexity, each with its 95% interval in the same cell
(:data:`lm_eval_it.stats.intervals.INTERVAL_LABEL`), plus the best temperature when a sweep ran and the mean KL divergence
when a model was compared to a reference. It fits :data:`WIDTH` columns: the
model and dataset names are shortened (both ends kept) to the room the numbers
leave. ``--details`` adds every metric, then each plug-in's short section
(:mod:`lm_eval_it.stats.registry`: context length, compression, memorisation, groups,
then the comparison, the sweeps, target ranks and KL; the same tables summary.md and
report.html hold).

Example::

    >>> row = {"model": "m", "dataset": "d", "metrics": {"docs": 2, "tokens": 40, "bits_per_byte": 0.9,
    ...        "token_perplexity": 12.3456}, "intervals": {"bits_per_byte": [0.85, 0.95],
    ...        "token_perplexity": [11.0, 13.5]}}
    >>> print(compact_table([row]))
    model  dataset  docs  tokens      bits/byte (95% CI)   token ppl (95% CI)
    m      d           2      40  0.9000 (0.8500–0.9500)  12.35 (11.00–13.50)
"""

from __future__ import annotations

import math

from lm_eval_it.report.compare.build import comparison_markdown
from lm_eval_it.report.sections import markdown_sections
from lm_eval_it.report.summary import empty_skipped_note, shorten, text_table
from lm_eval_it.stats.intervals import INTERVAL_LABEL

WIDTH = 100
MIN_NAME = 8  # names are never cut below this many characters
LEGEND = f"In brackets: {INTERVAL_LABEL}."
COMPARISON_ORDER = 45  # --details: the comparison after the dataset analyses, before the sweeps and KL


def _ppl_format(x: float) -> str:
    """Four or five significant digits: 3.142, 12.35, 123.5, 1235."""
    return ".3f" if x < 10 else ".2f" if x < 100 else ".1f" if x < 1000 else ".0f"


def _top(v, iv) -> float:
    """The largest of a value and its interval (the precision that fits them all)."""
    finite = [x for x in [v, *(iv or [])] if isinstance(x, (int, float)) and math.isfinite(x)]
    return max(finite, default=0.0)


def _with_interval(v, iv, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if not iv or any(x is None for x in iv):
        return format(v, spec)
    return f"{v:{spec}} ({iv[0]:{spec}}–{iv[1]:{spec}})"


def _count(n) -> str:
    return "–" if n is None else str(n)


def _best_t(row: dict) -> str:
    t = ((row.get("temperature") or {}).get("best") or {}).get("temperature")
    return "–" if t is None else f"{t:.3f}"


def _kl(row: dict) -> str:
    kl = row.get("kl")
    if not kl:
        return "–"
    t1 = next((p for p in kl["per_temperature"] if p["temperature"] == 1.0), None)
    return "–" if t1 is None or t1.get("kl_ref_cand_nats") is None else f"{t1['kl_ref_cand_nats']:.3g}"


def _columns(rows: list[dict]) -> list[tuple[str, list[str], bool]]:
    """(header, cells, is_name) per column; the best-T and KL columns only when some row has them."""
    def m(r, k):
        return (r.get("metrics") or {}).get(k)

    def iv(r, k):
        return (r.get("intervals") or {}).get(k)

    def ppl(r):
        v, i = m(r, "token_perplexity"), iv(r, "token_perplexity")
        return _with_interval(v, i, _ppl_format(_top(v, i)))

    cols = [("model", [r["model"] for r in rows], True), ("dataset", [r["dataset"] for r in rows], True),
            ("docs", [_count(m(r, "docs")) for r in rows], False),
            ("tokens", [_count(m(r, "tokens")) for r in rows], False),
            ("bits/byte (95% CI)", [_with_interval(m(r, "bits_per_byte"), iv(r, "bits_per_byte"), ".4f")
                                    for r in rows], False),
            ("token ppl (95% CI)", [ppl(r) for r in rows], False)]
    if any(r.get("temperature") for r in rows):
        cols.append(("best T", [_best_t(r) for r in rows], False))
    if any(r.get("kl") for r in rows):
        cols.append(("KL nats", [_kl(r) for r in rows], False))
    return cols


def _name_widths(natural: list[int], room: int) -> list[int]:
    """Widths for the name columns: natural if they fit in ``room``, else cut, the widest first."""
    widths = list(natural)
    while sum(widths) > room:
        k = max(range(len(widths)), key=lambda i: widths[i])
        if widths[k] <= MIN_NAME:
            break
        widths[k] -= 1
    return widths


def compact_table(rows: list[dict], width: int = WIDTH) -> str:
    """The run's one table: names left, numbers right, two spaces apart, at most ``width`` columns."""
    cols = _columns(rows)
    natural = [max(len(h), *(len(c) for c in cells)) for h, cells, _ in cols]
    names = [i for i, (_, _, is_name) in enumerate(cols) if is_name]
    room = width - 2 * (len(cols) - 1) - sum(w for i, w in enumerate(natural) if i not in names)
    for i, w in zip(names, _name_widths([natural[i] for i in names], room)):
        natural[i] = w
    lines = []
    for k in range(-1, len(rows)):
        texts = []
        for (head, cells, is_name), w in zip(cols, natural):
            text = head if k < 0 else cells[k]
            texts.append(shorten(text, w).ljust(w) if is_name else text.rjust(w))
        lines.append("  ".join(texts).rstrip())
    return "\n".join(lines)


def details_text(results: dict) -> str:
    """The tables ``--details`` prints under the compact one: every metric, then the analysis sections."""
    rows = results["results"]
    sections = markdown_sections(rows, terminal=True)
    if results.get("comparison"):
        sections.append((COMPARISON_ORDER, "## Comparison\n\n" + comparison_markdown(results["comparison"])))
    out = ["## All metrics", "", text_table(rows)]
    for _, text in sorted(sections, key=lambda s: s[0]):  # stable: a plug-in at the comparison's place stays first
        out += ["", text.rstrip("\n")]
    return "\n".join(out)


def terminal_report(results: dict, folder, details: bool = False) -> str:
    """Everything a finished run prints on stdout."""
    rows = results["results"]
    shown = any((r.get("intervals") or {}).get("bits_per_byte") for r in rows)
    out = [compact_table(rows)] + ([LEGEND] if shown else ["No intervals: fewer than 2 documents scored tokens."])
    if any(r.get("temperature") for r in rows):
        out.append("best T: the sampling temperature of least NLL (how it was found: summary.md).")
    if any(r.get("kl") for r in rows):
        out.append("KL nats: mean KL(reference ‖ model) per token at T = 1.")
    note = empty_skipped_note(results.get("datasets") or [])
    if note:
        out.append(note)
    if details:
        out += ["", details_text(results)]
    out += ["", f"results: {folder}"]
    if not details:
        out.append("summary.md and report.html there hold every table; --details prints them here too")
    return "\n".join(out)
