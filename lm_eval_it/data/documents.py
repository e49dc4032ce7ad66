"""Documents: turn a dataset entry of the config into a list of texts.

Sources (exactly one per entry):

* ``builtin:`` a named dataset (:mod:`lm_eval_it.config.named`): ``pydoc_topics``
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
is then a re-iterable :class:`~lm_eval_it.data.hub.StreamedTexts` instead of a
list (see :class:`Documents`).

Groups: ``group_by: <field>`` on rows gives each document the text of that
field as its group; a glob in a text ``path:`` (``data/*.txt``) reads the
matching files in sorted order, each file a group named by its stem.
``Documents.groups`` lists them, aligned with ``texts``.

Text is kept byte for byte: files are read without newline translation, so
CRLF line endings are scored and counted as they are. ``mode: documents``
scores each document on its own (empty ones are skipped and counted; a row
without its text field, or with null there, is an error naming the row);
``mode: stream`` joins the rows with ``separator`` into one document. A
``hub:`` id without ``org/`` that reads like a builtin name misspelt
(``pydoc_topic``) is an error that suggests the name, before any hub lookup.

Example::

    >>> from lm_eval_it.config.schema import DatasetConfig
    >>> docs = load_documents(DatasetConfig(builtin="pydoc_topics", limit=3))
    >>> len(docs.texts), docs.name
    (3, 'pydoc_topics')
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lm_eval_it.config.named import NAMED, builtin_typo
from lm_eval_it.config.schema import DatasetConfig
from lm_eval_it.data.hub import StreamedTexts, open_hub
from lm_eval_it.data.readers import read_jsonl, read_text, rows_column, rows_groups
from lm_eval_it.errors import UserError


@dataclass
class Documents:
    """The documents of one dataset entry.

    ``texts`` is a ``list[str]``, except for ``streaming: true``: then it is a
    :class:`~lm_eval_it.data.hub.StreamedTexts`, an iterable whose every pass
    re-opens the hub stream (``limit`` rows at most), so the corpus never has to
    fit in memory. It has no ``len()`` (``TypeError``); ``skipped_empty`` is
    ``None`` (after a full pass ``texts.skipped_empty`` knows it); and the
    fingerprint is taken over the source description (hub id, config, split,
    revision, limit, text field, mode, separator) instead of the text, so it
    cannot see the upstream data change unless ``revision`` is pinned.
    Otherwise the fingerprint is a sha256 over the texts and groups (:func:`fingerprint_texts`).

    ``groups`` (``group_by:`` or a glob ``path:``) is a ``list[str]`` aligned with
    ``texts``, the group of each document; ``None`` without groups.
    """

    name: str
    texts: list[str] | StreamedTexts
    source: dict
    skipped_empty: int | None = 0
    fingerprint: str = field(default="")
    groups: list[str] | None = None

    def __post_init__(self) -> None:
        if self.groups is not None and (self.streaming or len(self.groups) != len(self.texts)):
            raise ValueError("groups must be a list aligned with a list of texts")
        if not self.fingerprint:
            if self.streaming:
                self.fingerprint = fingerprint_source(self.source)
            else:
                self.fingerprint = fingerprint_texts(self.texts, self.groups)

    @property
    def streaming(self) -> bool:
        """True when ``texts`` is a stream (no ``len()``), not a list."""
        return not isinstance(self.texts, list)


def fingerprint_texts(texts: list[str], groups: list[str] | None = None) -> str:
    """sha256 over the documents, each prefixed by its byte length; then the groups, if any.

    >>> fingerprint_texts(["a"], ["x"]) != fingerprint_texts(["a"], ["y"]) != fingerprint_texts(["a"])
    True
    """
    h = hashlib.sha256()

    def add(items: list[str]) -> None:
        for t in items:
            b = t.encode("utf-8")
            h.update(len(b).to_bytes(8, "little"))
            h.update(b)

    add(texts)
    if groups is not None:
        h.update(b"\xffgroups")  # marks where the groups start
        add(groups)
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


def _lines_to_documents(rows: list[str], doc_regex: str | None) -> list[str]:
    """Rows that are lines → documents cut by ``doc_regex`` (rows as they are without one)."""
    if not doc_regex:
        return rows
    text = "".join(r if not r or r.endswith("\n") else r + "\n" for r in rows)
    return split_documents(text, doc_regex) if text else []


def _from_rows(rows, cfg: DatasetConfig, where: str) -> tuple[list[str], list[str] | None]:
    texts = _lines_to_documents(rows_column(rows, cfg.text_field, where, null_is_empty=cfg.format == "csv"),
                                cfg.doc_regex)
    return texts, rows_groups(rows, cfg.group_by, where) if cfg.group_by else None


def _text_glob(cfg: DatasetConfig) -> tuple[list[str], list[str], list[str]]:
    """Documents of every text file matching the glob ``path:`` (sorted), each file's stem as its group."""
    files = sorted(p for p in glob.glob(str(Path(cfg.path).expanduser()), recursive=True) if Path(p).is_file())
    if not files:
        raise UserError(f"datasets[{cfg.name}].path: no file matches {cfg.path!r}")
    stems: dict[str, str] = {}
    texts, groups = [], []
    for f in files:
        stem = Path(f).stem
        if stem in stems:
            raise UserError(f"datasets[{cfg.name}].path: {stems[stem]!r} and {f!r} would both be group {stem!r}")
        stems[stem] = f
        docs = split_documents(read_text(Path(f), cfg.encoding_errors), cfg.doc_regex)
        texts += docs
        groups += [stem] * len(docs)
    return texts, groups, files


def _local(cfg: DatasetConfig) -> tuple[list[str], list[str] | None]:
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        hint = "; `make domains` writes it" if path.name == "domains.jsonl" else ""
        raise UserError(f"datasets[{cfg.name}].path: file {str(path)!r} does not exist{hint}")
    if cfg.format == "text":
        return split_documents(read_text(path, cfg.encoding_errors), cfg.doc_regex), None
    if cfg.format == "jsonl":
        return _from_rows(read_jsonl(path, cfg.encoding_errors), cfg, str(path))
    import datasets

    kind = cfg.format
    try:
        rows = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as e:  # noqa: BLE001 - surface the library's reason on one line
        raise UserError(f"{path}: could not read as {kind}: {str(e).splitlines()[0]}") from None
    return _from_rows(rows, cfg, str(path))


def _not_a_typo(cfg: DatasetConfig, hub_id: str) -> None:
    """``hub: pydoc_topic`` is a typo of a builtin name, not a hub lookup (that would fail on the network)."""
    typo = None if cfg.builtin else builtin_typo(hub_id)
    if typo:
        raise UserError(f"datasets[{cfg.name}].hub: {hub_id!r} reads like a typo of a builtin name; did you mean "
                        f"`builtin: {typo}`? (a hub dataset id reads org/name)")


def _hub(cfg: DatasetConfig, hub_id: str) -> tuple[list[str], list[str] | None]:
    rows = open_hub(hub_id, cfg.config, cfg.split, cfg.revision, where=f"datasets[{cfg.name}]")
    return _from_rows(rows, cfg, f"hub dataset {hub_id}")


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
    if hub_id and not cfg.path:
        _not_a_typo(cfg, hub_id)
    if cfg.streaming:
        return _streamed(cfg, hub_id)
    groups = None
    if cfg.builtin == "pydoc_topics":
        texts, source = _builtin(cfg.builtin), {"builtin": cfg.builtin, "python": sys.version.split()[0]}
    elif cfg.path and any(c in cfg.path for c in "*?["):
        texts, groups, files = _text_glob(cfg)
        source = {"path": str(Path(cfg.path).expanduser().absolute()), "files": [str(Path(f).resolve()) for f in files]}
    elif cfg.path:
        (texts, groups), source = _local(cfg), {"path": str(Path(cfg.path).expanduser().resolve())}
    else:
        texts, groups = _hub(cfg, hub_id)
        source = {"hub": hub_id, "config": cfg.config, "split": cfg.split, "revision": cfg.revision}
    if cfg.builtin and cfg.builtin != "pydoc_topics":
        source = {"builtin": cfg.builtin, **source}
    if cfg.group_by:
        source["group_by"] = cfg.group_by
    if cfg.limit is not None:
        texts = texts[: cfg.limit]
        groups = groups[: cfg.limit] if groups is not None else None
    skipped = 0
    if cfg.mode == "stream":
        texts, groups = [cfg.separator.join(texts)], None
    else:
        kept = [i for i, t in enumerate(texts) if t]
        skipped, texts = len(texts) - len(kept), [texts[i] for i in kept]
        groups = [groups[i] for i in kept] if groups is not None else None
    if not texts or not texts[0]:
        raise UserError(f"datasets[{cfg.name}]: no non-empty documents to score")
    return Documents(name=cfg.name, texts=texts, source=source, skipped_empty=skipped, groups=groups)
