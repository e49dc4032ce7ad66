"""Metrics from summed totals: sum first, divide once.

Every figure is derived from five totals over exactly the scored text: NLL in
nats, scored tokens, UTF-8 bytes, words and characters. Totals add up across
documents (and batches); ratios are only taken at the end, never averaged.

* token perplexity = exp(NLL / tokens)  (comparable only on one tokenizer)
* bits per byte    = NLL / (ln 2 · bytes)  (comparable across tokenizers)
* bits per word    = NLL / (ln 2 · words), word perplexity = exp(NLL / words)
* bits per char    = NLL / (ln 2 · chars)

Words follow lm-eval: ``len(re.split(r"\\s+", text))``.

Example::

    >>> t = Totals.of_text("ab cd", nll=math.log(2) * 10, tokens=2)
    >>> (t.bytes, t.words, t.chars)
    (5, 2, 5)
    >>> m = summarize(t)
    >>> m["bits_per_byte"], m["bits_per_word"], m["token_perplexity"]
    (2.0, 5.0, 32.0)
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

LN2 = math.log(2.0)
_WS = re.compile(r"\s+")


def count_words(text: str) -> int:
    """lm-eval's word count: pieces between runs of whitespace."""
    return len(_WS.split(text))


@dataclass
class Totals:
    """Additive totals over scored text."""

    nll: float = 0.0
    tokens: int = 0
    bytes: int = 0
    words: int = 0
    chars: int = 0
    docs: int = 0

    @classmethod
    def of_text(cls, text: str, nll: float, tokens: int) -> "Totals":
        return cls(nll=float(nll), tokens=int(tokens), bytes=len(text.encode("utf-8")),
                   words=count_words(text), chars=len(text), docs=1)

    def __add__(self, other: "Totals") -> "Totals":
        return Totals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def as_dict(self) -> dict:
        return asdict(self)


def _ratio(num: float, den: int) -> float:
    return num / den if den else float("nan")


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return float("inf")


def summarize(t: Totals) -> dict:
    """All derived metrics of one set of totals, as a flat dict."""
    nats_per_token = _ratio(t.nll, t.tokens)
    return {
        **t.as_dict(),
        "nll_per_token": nats_per_token,
        "token_perplexity": _exp(nats_per_token),
        "bits_per_token": nats_per_token / LN2,
        "bits_per_byte": _ratio(t.nll, t.bytes) / LN2,
        "byte_perplexity": _exp(_ratio(t.nll, t.bytes)),
        "bits_per_word": _ratio(t.nll, t.words) / LN2,
        "word_perplexity": _exp(_ratio(t.nll, t.words)),
        "bits_per_char": _ratio(t.nll, t.chars) / LN2,
        "tokens_per_byte": _ratio(t.tokens, t.bytes),
        "tokens_per_word": _ratio(t.tokens, t.words),
        "bytes_per_token": _ratio(t.bytes, t.tokens),
    }


def same_scored_bytes(rows: list[dict]) -> bool:
    """Whether result rows (one dataset) scored the same UTF-8 bytes in every document.

    They do with a prefix token; with ``prefix: none`` each tokenizer's first token is context only, so
    models with different tokenizers score different bytes.

    >>> same_scored_bytes([{"per_document": [{"bytes": 5}]}, {"per_document": [{"bytes": 4}]}])
    False
    """
    return len({tuple(d["bytes"] for d in r["per_document"]) for r in rows}) <= 1
