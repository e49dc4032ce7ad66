"""Documents: turn a dataset entry of the config into a list of texts.

Sources (exactly one per entry):

* ``builtin: pydoc_topics`` - the Python documentation topics shipped with every
  Python (``pydoc_data.topics``): 79 documents of real English, offline.
* ``path:`` a local text file (``.txt``/``.raw``/``.md`` or ``format: text``:
  one document, or split before each line matching ``doc_regex``), or
  ``.jsonl``/``.json``/``.parquet``/``.csv`` (one row per document, text in
  ``text_field``).
* ``hub:`` a Hugging Face dataset id with ``config`` and ``split``.

Text is kept byte for byte: files are read without newline translation, so
CRLF line endings are scored and counted as they are. ``mode: documents``
scores each document on its own (empty ones are skipped and counted);
``mode: stream`` joins the rows with ``separator`` into one document.

Example::

    >>> from lm_eval_it.config import DatasetConfig
    >>> docs = load_documents(DatasetConfig(builtin="pydoc_topics", limit=3))
    >>> len(docs.texts), docs.name
    (3, 'pydoc_topics')
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import DatasetConfig
from .errors import UserError, did_you_mean


@dataclass
class Documents:
    name: str
    texts: list[str]
    source: dict
    skipped_empty: int = 0
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            self.fingerprint = fingerprint_texts(self.texts)


def fingerprint_texts(texts: list[str]) -> str:
    """sha256 over the documents, each prefixed by its byte length."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def _builtin(name: str) -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def _read_text(path: Path, errors: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8", errors=errors)
    except UnicodeDecodeError as e:
        raise UserError(
            f"{path}: not valid UTF-8 at byte offset {e.start}; fix the file or set encoding_errors: replace"
        ) from None


def split_documents(text: str, doc_regex: str | None) -> list[str]:
    """Cut ``text`` before every line that matches ``doc_regex`` (no bytes lost).

    >>> split_documents(" = A = \\r\\nx\\r\\n = B = \\r\\ny", r"^ = [^=].* = \\r?$")
    [' = A = \\r\\nx\\r\\n', ' = B = \\r\\ny']
    """
    if not doc_regex:
        return [text]
    starts = [m.start() for m in re.finditer(doc_regex, text, flags=re.MULTILINE)]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    return [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]


def _rows_column(rows, column: str, where: str) -> list[str]:
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


def _local(cfg: DatasetConfig) -> list[str]:
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise UserError(f"datasets[{cfg.name}].path: file {str(path)!r} does not exist")
    if cfg.format == "text":
        return split_documents(_read_text(path, cfg.encoding_errors), cfg.doc_regex)
    if cfg.format == "jsonl":
        rows = _read_jsonl(path, cfg)
        return _rows_column(_Columns(rows), cfg.text_field, str(path))
    import datasets

    kind = cfg.format
    try:
        rows = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as e:  # noqa: BLE001 - surface the library's reason on one line
        raise UserError(f"{path}: could not read as {kind}: {str(e).splitlines()[0]}") from None
    return _rows_column(rows, cfg.text_field, str(path))


class _Columns:
    """A list of dict rows seen as columns (the subset of ``datasets.Dataset`` we use)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.column_names = list(dict.fromkeys(k for r in rows for k in r))

    def __getitem__(self, column: str) -> list:
        return [r.get(column) for r in self.rows]


def _read_jsonl(path: Path, cfg: DatasetConfig) -> list[dict]:
    text = _read_text(path, cfg.encoding_errors)
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


def _hub(cfg: DatasetConfig) -> list[str]:
    import datasets

    try:
        rows = datasets.load_dataset(cfg.hub, cfg.config, split=cfg.split, revision=cfg.revision)
    except Exception as e:  # noqa: BLE001
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise UserError(
            f"datasets[{cfg.name}]: could not load hub dataset {cfg.hub!r} ({cfg.config}, {cfg.split}): {first}"
        ) from None
    return _rows_column(rows, cfg.text_field, f"hub dataset {cfg.hub}")


def load_documents(cfg: DatasetConfig) -> Documents:
    """Load, limit and shape the documents of one dataset entry."""
    if cfg.builtin:
        texts, source = _builtin(cfg.builtin), {"builtin": cfg.builtin}
        import sys

        source["python"] = sys.version.split()[0]
    elif cfg.path:
        texts, source = _local(cfg), {"path": str(Path(cfg.path).expanduser().resolve())}
    else:
        texts = _hub(cfg)
        source = {"hub": cfg.hub, "config": cfg.config, "split": cfg.split, "revision": cfg.revision}
    if cfg.limit is not None:
        texts = texts[: cfg.limit]
    skipped = 0
    if cfg.mode == "stream":
        texts = [cfg.separator.join(texts)]
    else:
        kept = [t for t in texts if t]
        skipped, texts = len(texts) - len(kept), kept
    texts = [t for t in texts if t]
    if not texts:
        raise UserError(f"datasets[{cfg.name}]: no non-empty documents to score")
    return Documents(name=cfg.name, texts=texts, source=source, skipped_empty=skipped)
