"""Readers of local data: UTF-8 text (``.gz`` too) and rows seen as columns.

``rows_column`` / ``rows_groups`` read one field of jsonl/parquet/csv/hub rows
(anything with ``column_names`` and ``rows[field]``), with one-line errors that
name the row: ``line N`` of a jsonl file, else ``row N`` (counted from 1). A row
whose text field is missing or null is an error (but an empty CSV cell, which is
how CSV writes an empty text); an empty string is kept (the caller skips it as
an empty document and says so).

Example::

    >>> rows = Columns([{"text": "a", "lang": "en"}, {"text": "", "lang": 3}])
    >>> rows_column(rows, "text", "demo"), rows_groups(rows, "lang", "demo")
    (['a', ''], ['en', '3'])
    >>> rows_column(Columns([{"text": "a"}, {"title": "b"}], lines=[1, 3]), "text", "d.jsonl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    lm_eval_it.errors.UserError: d.jsonl: line 3 has no 'text' (the key is missing); give it a text, or ...
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from lm_eval_it.errors import UserError, did_you_mean


def read_text(path: Path, errors: str) -> str:
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        data = gzip.decompress(data)
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}: not valid UTF-8 at byte offset {e.start}; fix the file or set encoding_errors: replace"
        ) from None


def rows_column(rows, column: str, where: str, null_is_empty: bool = False) -> list[str]:
    """The text field of every row; ``null_is_empty``: a null is an empty text (CSV cannot tell them apart)."""
    names = list(rows.column_names)
    if column not in names:
        raise UserError(
            f"{where}: unknown text_field {column!r}{did_you_mean(column, names)}; available fields: {', '.join(names)}"
        )
    values = [("" if v is None and null_is_empty else v) for v in rows[column]]
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str)), None)
    if bad is None:
        return values
    row = row_name(rows, bad)
    if values[bad] is None:
        why = "the key is missing" if isinstance(rows, Columns) and column not in rows.rows[bad] else "it is null"
        raise UserError(f"{where}: {row} has no {column!r} ({why}); give it a text, or \"{column}\": \"\" to skip it "
                        f"as an empty document")
    raise UserError(f"{where}: {row} field {column!r} is {type(values[bad]).__name__}, expected text")


def row_name(rows, i: int) -> str:
    """How an error names row ``i`` (from 0): ``line N`` of a jsonl file, else ``row N`` counted from 1."""
    lines = getattr(rows, "lines", None)
    return f"line {lines[i]}" if lines else f"row {i + 1}"


def rows_groups(rows, column: str, where: str) -> list[str]:
    """The ``group_by`` field of every row as text; a row without a value is an error naming it."""
    names = list(rows.column_names)
    if column not in names:
        raise UserError(
            f"{where}: unknown group_by field {column!r}{did_you_mean(column, names)}; available fields: {', '.join(names)}"
        )
    values = rows[column]
    bad = next((i for i, v in enumerate(values) if v is None or v == ""), None)
    if bad is not None:
        raise UserError(f"{where}: {row_name(rows, bad)} has no value for group_by field {column!r}")
    return [str(v) for v in values]


class Columns:
    """A list of dict rows seen as columns (the subset of ``datasets.Dataset`` we use).

    ``lines``: the file line of each row (jsonl), for error messages."""

    def __init__(self, rows: list[dict], lines: list[int] | None = None):
        self.rows, self.lines = rows, lines
        self.column_names = list(dict.fromkeys(k for r in rows for k in r))

    def __getitem__(self, column: str) -> list:
        return [r.get(column) for r in self.rows]


def read_jsonl(path: Path, errors: str = "strict") -> Columns:
    """The rows of a jsonl file (or a ``.json`` array) as :class:`Columns`; jsonl rows know their line."""
    text = read_text(path, errors)
    lines = None
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows, lines = [], []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
                lines.append(i)
    if not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path}: expected one JSON object per line")
    return Columns(rows, lines)
