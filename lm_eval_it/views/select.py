"""Which documents the views show, and the top lists of a comparison (pure: from views files and results rows).

* :func:`surprisal_documents`: the ``show`` highest and lowest in bits per byte, every flagged document and the
  named ones, among those recorded;
* :func:`difference_documents`: the ``show`` largest Δ bits per byte each way, among the documents both views
  recorded, after :func:`check_same_documents` has refused views of different texts in one line;
* :func:`top_lists`: the strings (whitespace-delimited words, or the baseline's tokens) with the largest total
  Δ bits each way, with counts, and what they are over: the dataset when both recordings are complete,
  else the drawn parts of the documents both recorded.

Example::

    >>> from lm_eval_it.views.store import DocView, ViewSet
    >>> def vs(nll):
    ...     d = DocView(0, "to be", np.array([0, 2]), np.array([2, 3]), np.array(nll), np.array([0, 1]))
    ...     return ViewSet("m", "d", {0: d}, True, 1)
    >>> t = top_lists(vs([1.0, 1.0]), vs([1.0, 3.0]), by="words")
    >>> [(x["string"], round(x["total"], 3), x["count"]) for x in t["up"]], t["over"]
    ([('be', 1.924, 1)], 'the dataset (1 documents)')
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from lm_eval_it.errors import UserError
from lm_eval_it.views.align import doc_byte_bits, span_totals, token_spans, top, word_spans
from lm_eval_it.views.store import ViewSet


def surprisal_documents(vs: ViewSet, show: int = 3, flagged: list[int] = (), named: list[int] = ()) -> list[tuple[int, str]]:
    """``[(doc, why)]`` in the order drawn: highest bits per byte first, then lowest, flagged, named; each once."""
    ranked = sorted((d for d in vs.docs if math.isfinite(vs.docs[d].bits_per_byte)),
                    key=lambda d: (-vs.docs[d].bits_per_byte, d))
    high = ranked[:show]
    low = list(reversed(ranked[max(show, len(ranked) - show):])) if show else []  # never the high ones again
    picks = [(d, "highest bits/byte") for d in high] + [(d, "lowest bits/byte") for d in low]
    picks += [(d, "flagged by the memorisation signals") for d in flagged if d in vs.docs]
    picks += [(d, "named in output.views.documents") for d in named if d in vs.docs]
    why: dict[int, list[str]] = {}
    for d, reason in picks:  # a document shown for several reasons says all of them
        if reason not in why.setdefault(d, []):
            why[d].append(reason)
    return [(d, "; ".join(reasons)) for d, reasons in why.items()]


def check_same_documents(a: ViewSet, b: ViewSet) -> None:
    """Refuse, in one line, two views whose datasets or documents differ."""
    if a.dataset_fingerprint and b.dataset_fingerprint and a.dataset_fingerprint != b.dataset_fingerprint:
        raise UserError(f"cannot compare {a.model} and {b.model} on {a.dataset}: the datasets differ "
                        f"(fingerprints {a.dataset_fingerprint[:12]} and {b.dataset_fingerprint[:12]})")
    if a.dataset_docs != b.dataset_docs:
        raise UserError(f"cannot compare {a.model} and {b.model} on {a.dataset}: {a.dataset_docs} documents "
                        f"against {b.dataset_docs}")
    for d in set(a.docs) & set(b.docs):
        ta, tb = a.docs[d].text, b.docs[d].text
        n = min(len(ta), len(tb))
        if ta[:n] != tb[:n]:
            raise UserError(f"cannot compare {a.model} and {b.model} on {a.dataset}: document {d}'s text differs")


def common(a: ViewSet, b: ViewSet) -> list[int]:
    """Documents both views recorded, with the same text (a cut view's text is a prefix of a whole one's)."""
    return sorted(set(a.docs) & set(b.docs))


def delta_bpb(a: ViewSet, b: ViewSet, d: int) -> float:
    """Δ bits per byte = bits/byte(B) − bits/byte(A) of document ``d``, whole."""
    return b.docs[d].bits_per_byte - a.docs[d].bits_per_byte


def difference_documents(a: ViewSet, b: ViewSet, show: int = 3) -> list[tuple[int, str]]:
    """``[(doc, why)]``: the ``show`` documents where B is most worse than A, then the ``show`` where it is most
    better (largest |Δ bits per byte| each way), among those both recorded."""
    check_same_documents(a, b)
    docs = [d for d in common(a, b) if math.isfinite(delta_bpb(a, b, d))]
    worse = sorted((d for d in docs if delta_bpb(a, b, d) > 0), key=lambda d: -delta_bpb(a, b, d))[:show]
    better = sorted((d for d in docs if delta_bpb(a, b, d) < 0), key=lambda d: delta_bpb(a, b, d))[:show]
    return [(d, f"{b.model} worse") for d in worse] + [(d, f"{b.model} better") for d in better]


def aligned_pair(a: ViewSet, b: ViewSet, d: int):
    """The two views of document ``d`` over the same text. When either is cut, both are cut at the last byte that
    ends a token of each model and a character, within the shorter text, so that every token drawn is whole
    and its bits stay on its own bytes."""
    va, vb = a.docs[d], b.docs[d]
    if not (va.cut or vb.cut) and len(va.text) == len(vb.text):
        return va, vb
    text = va.text if len(va.text) <= len(vb.text) else vb.text
    raw = text.encode("utf-8")
    chars = set(np.cumsum([len(c.encode("utf-8")) for c in text]).tolist()) | {0}
    ends = [set((v.start + v.length).tolist()) | {int(v.start[0]) if len(v.start) else 0} for v in (va, vb)]
    at = max((e for e in ends[0] & ends[1] & chars if e <= len(raw)), default=0)
    n = len(raw[:at].decode("utf-8"))
    return _cut(va, n, at), _cut(vb, n, at)


def _cut(v, n: int, limit: int):
    """``v`` over its first ``n`` characters (``limit`` bytes), with the tokens that end within them."""
    m = v.start + v.length <= limit
    return replace(v, text=v.text[:n], start=v.start[m], length=v.length[m], nll=v.nll[m], context=v.context[m],
                   entropy=None if v.entropy is None else v.entropy[m], cut=True)


def top_lists(a: ViewSet, b: ViewSet, by: str = "words", k: int = 15) -> dict:
    """The strings with the largest total Δ bits (B − A) each way over the documents both recorded.

    ``by="words"``: whitespace-delimited words; ``by="tokens"``: the baseline A's tokens. Returns
    ``{"up": [...], "down": [...], "over": str, "by": by, "complete": bool}``; ``up`` is where B needs
    more bits than A, ``down`` where it needs fewer.
    """
    check_same_documents(a, b)
    totals: dict = {}
    docs = common(a, b)
    for d in docs:
        va, vb = aligned_pair(a, b, d)
        delta = doc_byte_bits(vb) - doc_byte_bits(va)
        span_totals(delta, word_spans(va.text) if by == "words" else token_spans(va), totals)
    complete = a.complete and b.complete and len(docs) == len(a.docs) == len(b.docs)
    over = (f"the dataset ({len(docs)} documents)" if complete else
            f"the drawn parts of the {len(docs)} documents both runs recorded (of {a.dataset_docs})")
    return top(totals, k) | {"over": over, "by": by, "complete": complete}

