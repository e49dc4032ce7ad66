"""Documents: turn a dataset entry of the config into a list of texts.

Sources (exactly one per entry):

* ``builtin:`` a named dataset (:mod:`lm_eval_it.named_data`): ``pydoc_topics``
  (shipped with Python, 79 documents, offline), or a benchmark - ``wikitext2``,
  ``wikitext103``, ``ptb``, ``c4-validation``, ``lambada`` - read from the hub,
  or from a local copy given as ``path:``, shaped by the name's rule.
* ``path:`` a local text file (``.txt``/``.raw``/``.md`` or ``format: text``:
  one document, or split before each line matching ``doc_regex``), or
  ``.jsonl``/``.json``/``.parquet``/``.csv``, optionally ``.gz`` (one row per
  document, text in ``text_field``).
* ``hub:`` a Hugging Face dataset id with ``config`` and ``split``.

Rows (jsonl/parquet/csv/hub) with ``doc_regex`` set are taken as lines: joined
(a newline added to a row that lacks one) and cut before each matching line,
as the WikiText articles are.

``streaming: true`` (hub only) reads the rows as a stream: ``Documents.texts``
is then a re-iterable :class:`~lm_eval_it.hub_data.StreamedTexts` instead of a
list (see :class:`Documents`).

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

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .config import DatasetConfig
from .errors import UserError, did_you_mean
from .hub_data import StreamedTexts, open_hub
from .named_data import NAMED


@dataclass
class Documents:
    """The documents of one dataset entry.

    ``texts`` is a ``list[str]``, except for ``streaming: true``: then it is a
    :class:`~lm_eval_it.hub_data.StreamedTexts`, an iterable whose every pass
    re-opens the hub stream (``limit`` rows at most), so the corpus never has to
    fit in memory. It has no ``len()`` (``TypeError``); ``skipped_empty`` is
    ``None`` (after a full pass ``texts.skipped_empty`` knows it); and the
    fingerprint is taken over the source description (hub id, config, split,
    revision, limit, text field, mode, separator) instead of the text, so it
    cannot see the upstream data change unless ``revision`` is pinned.
    Otherwise the fingerprint is a sha256 over the texts (:func:`fingerprint_texts`).
    """

    name: str
    texts: list[str] | StreamedTexts
    source: dict
    skipped_empty: int | None = 0
    fingerprint: str = field(default="")

    def __post_init__(self) -> None:
        if not self.fingerprint:
            if self.streaming:
                self.fingerprint = fingerprint_source(self.source)
            else:
                self.fingerprint = fingerprint_texts(self.texts)

    @property
    def streaming(self) -> bool:
        """True when ``texts`` is a stream (no ``len()``), not a list."""
        return not isinstance(self.texts, list)


def fingerprint_texts(texts: list[str]) -> str:
    """sha256 over the documents, each prefixed by its byte length."""
    h = hashlib.sha256()
    for t in texts:
        b = t.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def fingerprint_source(source: dict) -> str:
    """Fingerprint of a streamed dataset: sha256 over its source description (not its text).

    >>> fingerprint_source({"hub": "a", "limit": 2}) == fingerprint_source({"limit": 2, "hub": "a"})
    True
    """
    blob = json.dumps(source, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return "source-sha256:" + hashlib.sha256(blob).hexdigest()


def _builtin(name: str) -> list[str]:
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def _read_text(path: Path, errors: str) -> str:
    data = path.read_bytes()
    if path.suffix.lower() == ".gz":
        data = gzip.decompress(data)
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


def _lines_to_documents(rows: list[str], doc_regex: str | None) -> list[str]:
    """Rows that are lines → documents cut by ``doc_regex`` (rows as they are without one)."""
    if not doc_regex:
        return rows
    text = "".join(r if not r or r.endswith("\n") else r + "\n" for r in rows)
    return split_documents(text, doc_regex) if text else []


def _local(cfg: DatasetConfig) -> list[str]:
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise UserError(f"datasets[{cfg.name}].path: file {str(path)!r} does not exist")
    if cfg.format == "text":
        return split_documents(_read_text(path, cfg.encoding_errors), cfg.doc_regex)
    if cfg.format == "jsonl":
        rows = _read_jsonl(path, cfg)
        return _lines_to_documents(_rows_column(_Columns(rows), cfg.text_field, str(path)), cfg.doc_regex)
    import datasets

    kind = cfg.format
    try:
        rows = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as e:  # noqa: BLE001 - surface the library's reason on one line
        raise UserError(f"{path}: could not read as {kind}: {str(e).splitlines()[0]}") from None
    return _lines_to_documents(_rows_column(rows, cfg.text_field, str(path)), cfg.doc_regex)


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


def _hub(cfg: DatasetConfig, hub_id: str) -> list[str]:
    rows = open_hub(hub_id, cfg.config, cfg.split, cfg.revision, where=f"datasets[{cfg.name}]")
    return _lines_to_documents(_rows_column(rows, cfg.text_field, f"hub dataset {hub_id}"), cfg.doc_regex)


def _streamed(cfg: DatasetConfig, hub_id: str) -> Documents:
    where = f"datasets[{cfg.name}]"
    rows = open_hub(hub_id, cfg.config, cfg.split, cfg.revision, where=where, streaming=True)
    texts = StreamedTexts(rows, cfg.text_field, where, limit=cfg.limit, mode=cfg.mode, separator=cfg.separator)
    source = {"hub": hub_id, "config": cfg.config, "split": cfg.split, "revision": cfg.revision,
              "streaming": True, "limit": cfg.limit, "text_field": cfg.text_field, "mode": cfg.mode}
    if cfg.mode == "stream":
        source["separator"] = cfg.separator
    if cfg.builtin:
        source = {"builtin": cfg.builtin, **source}
    return Documents(name=cfg.name, texts=texts, source=source, skipped_empty=None)


def load_documents(cfg: DatasetConfig) -> Documents:
    """Load, limit and shape the documents of one dataset entry."""
    hub_id = NAMED[cfg.builtin].hub if cfg.builtin else cfg.hub
    if cfg.streaming:
        return _streamed(cfg, hub_id)
    if cfg.builtin == "pydoc_topics":
        import sys

        texts, source = _builtin(cfg.builtin), {"builtin": cfg.builtin, "python": sys.version.split()[0]}
    elif cfg.path:
        texts, source = _local(cfg), {"path": str(Path(cfg.path).expanduser().resolve())}
    else:
        texts = _hub(cfg, hub_id)
        source = {"hub": hub_id, "config": cfg.config, "split": cfg.split, "revision": cfg.revision}
    if cfg.builtin and cfg.builtin != "pydoc_topics":
        source = {"builtin": cfg.builtin, **source}
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
