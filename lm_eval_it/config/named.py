"""Named benchmark datasets: what ``builtin: <name>`` stands for.

Each name fixes a hub id, config, split and text field, and how the rows are
shaped into documents. ``path:`` next to ``builtin:`` points at a local copy
(a raw text file, or jsonl/parquet/csv rows) that gets the same shaping, so a
benchmark runs offline.

* ``pydoc_topics``: Python's own ``pydoc_data.topics``, 79 documents, offline.
* ``wikitext2`` / ``wikitext103``: ``wikitext`` (``wikitext-2-raw-v1`` /
  ``wikitext-103-raw-v1``), test, ``text``; the rows are lines, joined and cut
  into articles before each `` = Title = `` line (lm-eval's document level).
* ``ptb``: ``ptb_text_only`` (``penn_treebank``), test, ``sentence``; the
  sentences joined with ``"\\n"`` into one stream document.
* ``c4-validation``: ``allenai/c4`` (``en``), validation, ``text``; streamed,
  the first 1000 documents.
* ``lambada``: ``EleutherAI/lambada_openai``, test, ``text``; one document a row.

A hub id without ``org/`` that is close to one of these names is taken for a
typo of it (:func:`builtin_typo`), before any hub lookup.

Fields the user sets (``limit``, ``text_field``, ``mode`` ...) win over the
name's defaults.

Example::

    >>> NAMED["ptb"].hub, NAMED["ptb"].mode, NAMED["ptb"].separator
    ('ptb_text_only', 'stream', '\\n')
    >>> named_defaults("c4-validation", local=False)["streaming"], named_defaults("c4-validation", local=True)["limit"]
    (True, 1000)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

WIKITEXT_ARTICLE = r"^ = [^=].* = \r?$"  # an article starts at each " = Title = " line


@dataclass(frozen=True)
class Named:
    hub: str | None  # None: shipped with Python, no hub involved
    config: str | None = None
    split: str = "test"
    text_field: str = "text"
    doc_regex: str | None = None  # rows are lines: joined, then cut before each matching line
    mode: str = "documents"
    separator: str = "\n\n"
    limit: int | None = None
    streaming: bool = False


NAMED: dict[str, Named] = {
    "pydoc_topics": Named(hub=None),
    "wikitext2": Named("wikitext", "wikitext-2-raw-v1", doc_regex=WIKITEXT_ARTICLE),
    "wikitext103": Named("wikitext", "wikitext-103-raw-v1", doc_regex=WIKITEXT_ARTICLE),
    "ptb": Named("ptb_text_only", "penn_treebank", text_field="sentence", mode="stream", separator="\n"),
    "c4-validation": Named("allenai/c4", "en", split="validation", limit=1000, streaming=True),
    "lambada": Named("EleutherAI/lambada_openai"),
}

# the fields a name fills in when the user leaves them out
_FILLED = ("config", "split", "text_field", "doc_regex", "mode", "separator", "limit", "streaming")


def named_defaults(name: str, local: bool) -> dict:
    """The config fields ``builtin: name`` sets; ``local``: a ``path:`` copy is read (never streamed)."""
    spec = NAMED[name]
    if spec.hub is None:
        return {}
    values = {k: getattr(spec, k) for k in _FILLED}
    if local:
        values["streaming"] = False
    return values


def hub_ids() -> list[str]:
    """Hub ids behind the names (for did-you-mean hints)."""
    return sorted({s.hub for s in NAMED.values() if s.hub})


def builtin_typo(name: str) -> str | None:
    """The builtin name a dataset id without ``org/`` most likely misspells, or None.

    Hub ids that the names read from (``wikitext``, ``ptb_text_only``) are no typo.

    >>> builtin_typo("pydoc_topic"), builtin_typo("wikitext"), builtin_typo("org/pydoc_topic")
    ('pydoc_topics', None, None)
    """
    if "/" in name or name in NAMED or name in hub_ids():
        return None
    close = difflib.get_close_matches(name, list(NAMED), n=1, cutoff=0.6)
    return close[0] if close else None
