"""Report tables as data, and their Markdown: what every plug-in's report sections are built from.

A table is ``{"headers", "rows", "left"}`` (``left``: how many leading columns are text;
``text``: other text columns; ``muted``: rows greyed out in HTML); a cell is a string or
``{"value", "interval"}``. :func:`md_table` renders one as Markdown; report.html renders the
same dict (``lm_eval_it/report/templates/macros.html.j2``).

Example::

    >>> print(md_table({"headers": ["model", "bits/byte"], "rows": [["m", cell(0.5, [0.4, 0.6])]]}))
    | model | bits/byte |
    |---|--:|
    | m | 0.5000 (0.4000–0.6000) |
"""

from __future__ import annotations

from lm_eval_it.numfmt import interval, missing
from lm_eval_it.numfmt import num as _f


def cell(v, iv, spec: str = ".4f") -> dict:
    """A value with its interval: ``lo–hi`` for positive metrics, ``[lo, hi]`` for signed ones."""
    if not iv or missing(v):
        return {"value": _f(v, spec), "interval": None}
    if spec.startswith("+"):
        return {"value": _f(v, spec), "interval": interval(iv, spec)}
    return {"value": _f(v, spec), "interval": f"{_f(iv[0], spec)}–{_f(iv[1], spec)}"}


def md_table(t: dict) -> str:
    """A table as Markdown: ``value (interval)`` cells, numbers right-aligned, ``|`` escaped."""
    def text(c) -> str:
        iv = c.get("interval") if isinstance(c, dict) else None
        s = c if not isinstance(c, dict) else c["value"] + ("" if not iv else f" {iv}" if iv[0] == "[" else f" ({iv})")
        return str(s).replace("|", "\\|").replace("\n", " ")

    left, texts = t.get("left", 1), t.get("text", ())
    lines = ["| " + " | ".join(t["headers"]) + " |",
             "|" + "|".join("---" if i < left or i in texts else "--:" for i in range(len(t["headers"]))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(text(c) for c in r) + " |" for r in t["rows"]])


def by_dataset(rows: list[dict], key: str) -> dict[str, list[dict]]:
    """The rows that hold ``key``, by dataset (first-seen order)."""
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.get(key):
            out.setdefault(r["dataset"], []).append(r)
    return out
