"""Readers of local data: UTF-8 text (``.gz`` too) and rows seen as columns.

``rows_column`` / ``rows_groups`` read one field of jsonl/parquet/csv/hub rows
(anything with ``column_names`` and ``rows[field]``), with one-line errors.

Example::

    >>> rows = Columns([{"text": "a", "lang": "en"}, {"text": None, "lang": 3}])
    >>> rows_column(rows, "text", "demo"), rows_groups(rows, "lang", "demo")
    (['a', ''], ['en', '3'])
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from .errors import UserError, did_you_mean


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


def rows_column(rows, column: str, where: str) -> list[str]:
    names = list(rows.column_names)
    if column not in names:
        raise UserError(
            f"{where}: unknown text_field {column!r}{did_you_mean(column, names)}; available fields: {', '.join(names)}"
        )
    values = rows[column]
    bad = next((i for i, v in enumerate(values) if not isinstance(v, str) and v is not None), None)
    if bad is not None:
        raise UserError(f"{where}: row {bad} field {column!r} is {type(values[bad]).__name__}, expected text")
    return ["" if v is None else v for v in values]


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
        raise UserError(f"{where}: row {bad} has no value for group_by field {column!r}")
    return [str(v) for v in values]


class Columns:
    """A list of dict rows seen as columns (the subset of ``datasets.Dataset`` we use)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.column_names = list(dict.fromkeys(k for r in rows for k in r))

    def __getitem__(self, column: str) -> list:
        return [r.get(column) for r in self.rows]


def read_jsonl(path: Path, errors: str = "strict") -> list[dict]:
    text = read_text(path, errors)
    if path.suffix == ".json" and text.lstrip().startswith("["):
        rows = json.loads(text)
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise UserError(f"{path}: line {i} is not valid JSON ({e.msg})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise UserError(f"{path}: expected one JSON object per line")
    return rows
