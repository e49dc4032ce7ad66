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
import os
import tempfile
from pathlib import Path

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


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that the file is either old or complete."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def write_run(folder: Path, results: dict) -> None:
    write_json(folder / "results.json", results)
    atomic_write(folder / "summary.md", summary_markdown(results))
