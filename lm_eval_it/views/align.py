"""Byte alignment of token NLLs (pure numpy): what is fair across tokenizers.

Two tokenizers cut the same text differently, so their tokens cannot be compared one by one. Their
bytes can: each token's NLL in bits is spread evenly over its UTF-8 bytes (:func:`byte_bits`). A token
with no bytes of its own (a special token, or a piece of a character another token completes) puts its
bits on the byte where it stands, so nothing is lost: the bytes of a document always sum to its total
bits. A character's bits are the sum over its bytes (:func:`char_bits`), and the difference of two models
on a character is ``bits(B) − bits(A)`` there (:func:`char_delta`); over a document those sum to the
difference of the two models' totals, exactly up to float64 rounding.

:func:`segments` cuts a document into the runs that a view colours: maximal runs of characters covered by
the same token of each model and of the same byte length, so every character of a run has the same value.
:func:`span_totals` adds a per-byte array over named spans (whitespace-delimited words, or a model's
tokens) for the top lists.

Example::

    >>> b = byte_bits(np.array([0, 2]), np.array([2, 1]), np.array([LN2 * 2, LN2]), 3)
    >>> b.tolist()
    [1.0, 1.0, 1.0]
    >>> char_bits("aé", np.array([1.0, 2.0, 3.0])).tolist()   # é is two bytes
    [1.0, 5.0]
"""

from __future__ import annotations

import math
import re

import numpy as np

LN2 = math.log(2.0)
WORD = re.compile(rb"\S+")


def byte_bits(start: np.ndarray, length: np.ndarray, nll: np.ndarray, n_bytes: int) -> np.ndarray:
    """(n_bytes,) float64 bits per byte: each token's NLL / ln 2 spread evenly over its bytes, clipped to the text.

    A token whose span is empty (or lies wholly outside the text) adds its bits to the nearest byte.
    """
    out = np.zeros(n_bytes, np.float64)
    if n_bytes == 0 or len(nll) == 0:
        return out
    bits = np.asarray(nll, np.float64) / LN2
    a = np.clip(np.asarray(start, np.int64), 0, n_bytes)
    b = np.clip(np.asarray(start, np.int64) + np.asarray(length, np.int64), 0, n_bytes)
    empty = b <= a
    if empty.any():
        np.add.at(out, np.minimum(a[empty], n_bytes - 1), bits[empty])
    keep = ~empty
    a, b, share = a[keep], b[keep], bits[keep] / (b[keep] - a[keep])
    n = b - a
    idx = np.repeat(a - np.r_[0, np.cumsum(n)[:-1]], n) + np.arange(int(n.sum()))
    out += np.bincount(idx, weights=np.repeat(share, n), minlength=n_bytes)
    return out


def char_byte_lengths(text: str) -> np.ndarray:
    """(characters,) UTF-8 byte count of each character of ``text``."""
    return np.fromiter((len(c.encode("utf-8")) for c in text), np.int64, count=len(text))


def char_bits(text: str, per_byte: np.ndarray) -> np.ndarray:
    """(characters,) the sum of ``per_byte`` over each character's bytes."""
    widths = char_byte_lengths(text)
    if len(widths) == 0:
        return np.zeros(0, np.float64)
    return np.add.reduceat(np.asarray(per_byte, np.float64), np.r_[0, np.cumsum(widths)[:-1]])


def doc_byte_bits(view) -> np.ndarray:
    """Bits per byte of a :class:`~lm_eval_it.views.store.DocView`."""
    return byte_bits(view.start, view.length, view.nll, view.n_bytes)


def char_delta(a, b) -> np.ndarray:
    """(characters,) Δ bits = bits(B) − bits(A) on each character of two views of the same document."""
    if a.text != b.text:
        raise ValueError(f"document {a.doc}: the two views hold different texts")
    return char_bits(a.text, doc_byte_bits(b) - doc_byte_bits(a))


def token_of_byte(start: np.ndarray, length: np.ndarray, n_bytes: int) -> np.ndarray:
    """(n_bytes,) index of the token whose span covers each byte (-1: none)."""
    out = np.full(n_bytes, -1, np.int64)
    for i, (s, n) in enumerate(zip(np.asarray(start), np.asarray(length))):
        out[max(int(s), 0): min(int(s + n), n_bytes)] = i
    return out


def segments(text: str, owners: list[np.ndarray], max_chars: int | None = None) -> list[tuple[int, int]]:
    """``[(first char, end char)]``: maximal runs of characters with the same owner in every array of
    ``owners`` (each (n_bytes,), e.g. :func:`token_of_byte` of each model) and the same byte length."""
    text = text if max_chars is None else text[:max_chars]
    widths = char_byte_lengths(text)
    if len(widths) == 0:
        return []
    first = np.r_[0, np.cumsum(widths)[:-1]]
    key = np.stack([widths] + [np.asarray(o)[first] for o in owners], axis=1)
    cut = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]).any(axis=1)])
    return list(zip(cut.tolist(), np.r_[cut[1:], len(widths)].tolist()))


def word_spans(text: str) -> list[tuple[int, int, str]]:
    """``[(byte start, byte end, word)]``: the whitespace-delimited words of ``text``."""
    raw = text.encode("utf-8")
    return [(m.start(), m.end(), m.group().decode("utf-8", "replace")) for m in WORD.finditer(raw)]


def token_spans(view) -> list[tuple[int, int, str]]:
    """``[(byte start, byte end, text)]``: the view's tokens that have bytes of their own."""
    raw = view.text.encode("utf-8")
    out = []
    for s, n in zip(view.start.tolist(), view.length.tolist()):
        if n > 0:
            out.append((s, s + n, raw[s: s + n].decode("utf-8", "backslashreplace")))  # part of a character: \xe4
    return out


def span_totals(per_byte: np.ndarray, spans: list[tuple[int, int, str]], into: dict | None = None) -> dict:
    """``{string: [total, count]}``: ``per_byte`` summed over each span, added up by the span's string."""
    into = {} if into is None else into
    if not spans:
        return into
    c = np.r_[0.0, np.cumsum(np.asarray(per_byte, np.float64))]
    for s, e, key in spans:
        got = into.setdefault(key, [0.0, 0])
        got[0] += float(c[min(e, len(c) - 1)] - c[min(s, len(c) - 1)])
        got[1] += 1
    return into


def top(totals: dict, k: int = 15) -> dict:
    """The ``k`` strings with the largest total in each direction: ``{"up": [...], "down": [...]}``,
    each ``{"string", "total", "count"}``; ``up`` holds positive totals only, ``down`` negative ones."""
    items = [{"string": s, "total": t, "count": n} for s, (t, n) in totals.items()]
    up = sorted((x for x in items if x["total"] > 0), key=lambda x: (-x["total"], x["string"]))[:k]
    down = sorted((x for x in items if x["total"] < 0), key=lambda x: (x["total"], x["string"]))[:k]
    return {"up": up, "down": down}
