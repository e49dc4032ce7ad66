"""Any file as segments: text the tokenizer reproduces byte for byte, and escaped raw bytes.

A file is first cut into maximal runs of valid UTF-8 and the bytes that are not. Each text run is
tokenised and decoded again; a run that comes back identical is one ``text`` segment (coded with the
model). One that does not is tried line by line, and a line that still does not come back is escaped:
its bytes become a ``raw`` segment, coded with a uniform model at 8 bits per byte. So every file round
trips: invalid UTF-8, binary, empty, one byte, CRLF.

Segments are ``(kind, payload)``: ``("text", token ids)`` or ``("raw", bytes)``. :func:`layout` gives what
the container records (kind and length of each), :func:`join` rebuilds the file.

Example::

    >>> class Chars:   # a toy tokenizer: one token per character, and it drops "\\r"
    ...     def encode_texts(self, texts): return [[ord(c) for c in t if c != "\\r"] for t in texts]
    ...     def decode(self, ids, clean_up_tokenization_spaces=False): return "".join(map(chr, ids))
    >>> segs = split(b"ab\\r\\ncd\\xff", Chars())
    >>> [(k, len(p)) for k, p in segs]
    [('raw', 4), ('text', 2), ('raw', 1)]
    >>> join(segs, Chars()) == b"ab\\r\\ncd\\xff"
    True
"""

from __future__ import annotations

import re

import numpy as np

_INVALID = re.compile("[\udc80-\udcff]+")  # surrogateescape's stand-ins for bytes that are not UTF-8


def _runs(data: bytes) -> list[tuple[str, str | bytes]]:
    """``[("text", str) | ("raw", bytes)]``: valid UTF-8 runs and the bytes between them."""
    s = data.decode("utf-8", errors="surrogateescape")
    out, at = [], 0
    for m in _INVALID.finditer(s):
        if m.start() > at:
            out.append(("text", s[at:m.start()]))
        out.append(("raw", m.group().encode("utf-8", errors="surrogateescape")))
        at = m.end()
    if at < len(s):
        out.append(("text", s[at:]))
    return out


def _reproduced(text: str, tokenizer) -> list[int] | None:
    """The token ids of ``text`` if they decode back to it exactly, else ``None``."""
    ids = tokenizer.encode_texts([text])[0]
    return list(ids) if tokenizer.decode(list(ids), clean_up_tokenization_spaces=False) == text else None


def split(data: bytes, tokenizer) -> list[tuple[str, list[int] | bytes]]:
    """Cut ``data`` into text segments (token ids that reproduce it) and raw (escaped) segments."""
    out: list[tuple[str, list[int] | bytes]] = []
    for kind, run in _runs(data):
        if kind == "raw":
            _add(out, "raw", run)
            continue
        ids = _reproduced(run, tokenizer)
        if ids is not None:
            _add(out, "text", ids)
            continue
        for line in run.splitlines(keepends=True):
            ids = _reproduced(line, tokenizer)
            _add(out, "text", ids) if ids is not None else _add(out, "raw", line.encode("utf-8"))
    return [(k, p) for k, p in out if len(p)]


def _add(out: list, kind: str, payload) -> None:
    """Append a segment; raw bytes next to raw bytes are merged (text is not: tokens of a concatenation differ)."""
    if kind == "raw" and out and out[-1][0] == "raw":
        out[-1] = ("raw", out[-1][1] + payload)
    else:
        out.append((kind, payload))


def layout(segments: list) -> list[list]:
    """``[[kind, length]]``: tokens of a text segment, bytes of a raw one (what the container records)."""
    return [[k, len(p)] for k, p in segments]


def tokens(segments: list) -> np.ndarray:
    """Every text segment's token ids, in order (the model codes them as one stream)."""
    ids = [np.asarray(p, np.int64) for k, p in segments if k == "text"]
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def raw_bytes(segments: list) -> bytes:
    """Every raw segment's bytes, in order (coded at 8 bits each)."""
    return b"".join(p for k, p in segments if k == "raw")


def rebuild(layout_: list[list], ids: np.ndarray, raw: bytes) -> list:
    """The segments again, from the recorded layout and the decoded token ids and raw bytes."""
    out, i, j = [], 0, 0
    for kind, n in layout_:
        if kind == "text":
            out.append(("text", [int(x) for x in ids[i: i + n]])); i += n
        else:
            out.append(("raw", raw[j: j + n])); j += n
    return out


def join(segments: list, tokenizer) -> bytes:
    """The file's bytes from its segments."""
    parts = [tokenizer.decode(list(p), clean_up_tokenization_spaces=False).encode("utf-8") if k == "text" else p
             for k, p in segments]
    return b"".join(parts)
