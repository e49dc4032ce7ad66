"""The token-level views as HTML: a document's surprisal, the difference of two models on it, the top lists.

* :func:`surprisal_runs`: the drawn part of a document as runs of characters, one per token, each coloured by
  the token's NLL in bits (:mod:`lm_eval_it.views.colour`), with a hover text (the ``title``): the token
  (``repr``, so whitespace shows), its NLL in bits, its bytes, its context length and, with a sweep, its
  entropy at T = 1. Text no token scored (context only) is drawn uncoloured.
* :func:`difference_runs`: the runs of :func:`lm_eval_it.views.align.segments` over both models' tokens, cut
  further wherever the per-character Δ changes, so that each run holds one exact value, Δ bits per character
  (B − A); the runs' values × their lengths sum to the drawn text's Δ total.
* :func:`surprisal_html`, :func:`difference_html`: the sections (legend, one block per document with its
  header), rendered by the ``views*.html.j2`` templates (autoescaped).

Example::

    >>> import numpy as np
    >>> from lm_eval_it.views.store import DocView
    >>> v = DocView(0, "to be", np.array([0, 2]), np.array([2, 3]), np.array([LN2, 3 * LN2]), np.array([0, 1]))
    >>> [(r["x"], r["c"]) for r in surprisal_runs(v, 100)]
    [('to', 's2'), (' be', 's6')]
    >>> print(surprisal_runs(v, 100)[1]["t"])
    ` be`
    3.00 bits · 3 B · ctx 1
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.numfmt import num
from lm_eval_it.report.html import render
from lm_eval_it.views import colour
from lm_eval_it.views.align import char_byte_lengths, char_delta, segments, token_of_byte
from lm_eval_it.views.select import aligned_pair, top_lists
from lm_eval_it.views.store import DocView, ViewSet

LN2 = math.log(2.0)


def _char_offsets(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(first byte, last byte) of each character of ``text`` in its UTF-8 encoding."""
    widths = char_byte_lengths(text)
    first = np.r_[0, np.cumsum(widths)[:-1]] if len(widths) else np.zeros(0, np.int64)
    return first.astype(np.int64), (first + widths - 1).astype(np.int64)


def _cuts(*keys: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``[(first, end)]`` over which every array of ``keys`` stays the same."""
    n = len(keys[0])
    if n == 0:
        return []
    change = np.zeros(n, bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    cut = np.flatnonzero(change)
    return list(zip(cut.tolist(), np.r_[cut[1:], n].tolist()))


def shown(text: str, i: int, j: int) -> str:
    r"""Characters ``i:j`` of ``text`` as drawn: a line break stays one line break when its CR and LF lie in
    different runs (an HTML parser reads a lone CR as a line break of its own); the hover text keeps the CR.

    >>> shown("a\r\nb", 0, 2), shown("a\r\nb", 2, 4), shown("a\rb", 0, 2)
    ('a', '\nb', 'a\n')
    """
    x = text[i:j].replace("\r\n", "\n")
    if x.endswith("\r") and text[j: j + 1] == "\n":
        x = x[:-1]
    return x.replace("\r", "\n")


def token_text(v: DocView, t: int) -> str:
    """Token ``t``'s text ``repr``-escaped (whitespace and newlines show) between backticks (which, unlike
    quotes, an HTML attribute holds unescaped: the pages stay small)."""
    raw = v.text.encode("utf-8")
    s, n = int(v.start[t]), int(v.length[t])
    return f"`{repr(raw[s: s + n].decode('utf-8', 'replace'))[1:-1]}`"


def token_title(v: DocView, t: int) -> str:
    """The hover text of token ``t``: its text, then its NLL in bits, its bytes (``B``), its context length in
    tokens (``ctx``) and, with a sweep, its entropy at T = 1 in bits (``H``)."""
    out = f"{token_text(v, t)}\n{num(v.nll[t] / LN2, '.2f')} bits · {int(v.length[t])} B · ctx {int(v.context[t])}"
    if v.entropy is not None:
        out += f" · H {num(v.entropy[t] / LN2, '.2f')}"
    return out


def surprisal_runs(v: DocView, max_chars: int) -> list[dict]:
    """The first ``max_chars`` characters as runs ``{"x": text as drawn (:func:`shown`), "c": class or None,
    "t": hover or None}``.

    A run is the characters whose first and last bytes lie in the same tokens; it is coloured by the token
    of its first byte (a character split between two tokens names both in its hover text)."""
    text = v.text[:max_chars]
    first, last = _char_offsets(text)
    own = token_of_byte(v.start, v.length, v.n_bytes)
    oa, ob = own[first], own[last]
    titles: dict[int, str] = {}
    out = []
    for i, j in _cuts(oa, ob):
        t, u = int(oa[i]), int(ob[i])
        if t < 0 and u < 0:
            out.append({"x": shown(text, i, j), "c": None, "t": None})
            continue
        t = t if t >= 0 else u
        title = titles.setdefault(t, token_title(v, t))
        if u >= 0 and u != t:
            title += "\n" + titles.setdefault(u, token_title(v, u))
        out.append({"x": shown(text, i, j), "c": f"s{colour.seq_index(v.nll[t] / LN2)}", "t": title})
    return out


def _cover(v: DocView, t: int) -> str:
    return "no token" if t < 0 else f"{token_text(v, t)} {num(v.nll[t] / LN2, '.2f')} bits"


def difference_runs(va: DocView, vb: DocView, max_chars: int) -> list[dict]:
    """Runs ``{"x", "c", "t", "d": Δ bits per character, "n": its characters}`` of two views of one text.

    Each run lies in one token of each model (:func:`~lm_eval_it.views.align.segments`) and holds one value of
    the per-character Δ (:func:`~lm_eval_it.views.align.char_delta`: exact, in float64); its hover text names
    both models' covering tokens, their NLLs in bits and the Δ on each of its characters."""
    text = va.text[:max_chars]
    delta = char_delta(va, vb)[: len(text)]
    first, _ = _char_offsets(text)
    own_a = token_of_byte(va.start, va.length, va.n_bytes)
    own_b = token_of_byte(vb.start, vb.length, vb.n_bytes)
    oa, ob = own_a[first], own_b[first]
    seg = np.zeros(len(text), np.int64)
    for k, (i, j) in enumerate(segments(text, [own_a, own_b])):
        seg[i:j] = k
    out = []
    for i, j in _cuts(seg, delta):
        d = float(delta[i])
        out.append({"x": shown(text, i, j), "c": f"d{colour.delta_index(d)}", "d": d, "n": j - i,
                    "t": f"A {_cover(va, int(oa[i]))}\nB {_cover(vb, int(ob[i]))}\nΔ {num(d, '+.3f')} bits/char"})
    return out


def _header(v: DocView, why: str, max_chars: int, bpb: str) -> dict:
    cut = v.cut or len(v.text) > max_chars
    return {"doc": v.doc, "why": why, "bpb": bpb, "group": v.group,
            "cut": min(len(v.text), max_chars) if cut else None, "lossy": not v.aligned}


def surprisal_html(vs: ViewSet, picks: list[tuple[int, str]], max_chars: int, style: bool = True) -> str:
    """One (model, dataset)'s surprisal section: legend, then each picked ``(doc, why)`` with its header."""
    docs = []
    for d, why in picks:
        v = vs.docs[d]
        docs.append(_header(v, why, max_chars, f"{num(v.bits_per_byte)} bits/byte")
                    | {"runs": surprisal_runs(v, max_chars), "empty": _empty_tokens(v, max_chars)})
    entropy = any(v.entropy is not None for v in vs.docs.values())
    return render("views_surprisal.html.j2", legend=colour.seq_legend(), docs=docs, model=vs.model, entropy=entropy,
                  style=colour.css() if style else "", recorded=len(vs.docs), dataset_docs=vs.dataset_docs)


def _empty_tokens(v: DocView, max_chars: int) -> int:
    """Scored tokens with no text of their own in the drawn part (not drawn; their bits are in the totals)."""
    limit = len(v.text[:max_chars].encode("utf-8"))
    return int(np.sum((v.length == 0) & (v.start < limit)))


def top_tables(a: ViewSet, b: ViewSet, names: tuple[str, str], k: int = 15) -> list[dict]:
    """The top lists by words and by A's tokens (:func:`~lm_eval_it.views.select.top_lists`), formatted: each
    string ``repr``-escaped, its total Δ bits signed, its count; and what the totals are over."""
    out = []
    for by, label, what in (("words", "word", "words"), ("tokens", f"token of {names[0]}", f"tokens of {names[0]}")):
        t = top_lists(a, b, by=by, k=k)
        rows = {side: [{"string": repr(x["string"]), "total": num(x["total"], "+.2f"), "count": x["count"]}
                       for x in t[side]] for side in ("up", "down")}
        out.append({"by": what, "label": label, **rows, "over": t["over"], "complete": t["complete"]})
    return out


def difference_html(a: ViewSet, b: ViewSet, names: tuple[str, str], picks: list[tuple[int, str]],
                    max_chars: int, style: bool = True, k: int = 15) -> str:
    """B against A on one dataset: legend, each picked ``(doc, why)`` with Δ bits/byte, then the top lists
    (``k`` strings each way). ``names``: A's and B's names as the page shows them."""
    docs = []
    for d, why in picks:
        va, vb = aligned_pair(a, b, d)
        bpb = b.docs[d].bits_per_byte - a.docs[d].bits_per_byte
        docs.append(_header(va, why, max_chars, f"Δ {num(bpb, '+.4f')} bits/byte") |
                    {"runs": difference_runs(va, vb, max_chars)})
    return render("views_difference.html.j2", legend=colour.delta_legend(*names), docs=docs, a=names[0],
                  b=names[1], tops=top_tables(a, b, names, k), style=colour.css() if style else "")
