"""The window protocol: window and stride in tokens, and the text a window plan scores (no model).

This module is the one place for the window protocol:

* ``window_unit: bytes`` converts window and stride to tokens at the dataset's
  bytes per token;
* a window beyond the model's positions is clamped, and the stride is scaled
  with it so that the configured overlap fraction is kept;
* ``protocol: llama-perplexity`` (:func:`resolve_llama`): llama.cpp's chunks of
  ``window`` = n_ctx tokens, the second half of each scored, a BOS in front of each
  chunk exactly when the tokenizer adds one by itself;
* the prefix rule (:mod:`lm_eval_it.backends.tokenizer`): with a prefix token every text
  token is scored; with ``prefix: none`` the first token is context only.

What is counted with ``prefix: none``: the bytes are exactly the UTF-8 bytes of
the scored tokens (all bytes minus the first token's, from the tokenizer's
per-token byte lengths); a character or a word counts only when **all** of its
bytes are scored.

Example::

    >>> scored_counts("Hello world", 3)          # first token 'Hel': 'Hello' is not wholly scored
    (8, 8, 1)
    >>> scored_counts("日本語 x", 2)               # the first token ends inside 日
    (9, 4, 1)
    >>> token_window(4096, 2048, "bytes", 4.2, 512, False, "m")[:2]
    (512, 256)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lm_eval_it.errors import UserError
from lm_eval_it.stats.metrics import count_words

_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Protocol:
    """The window protocol that ran for one model × dataset."""

    window: int  # model input length (a bos_every_window prefix included)
    stride: int  # text tokens each later window advances
    plan_window: int  # text tokens per window
    configured_window: int
    configured_stride: int
    window_unit: str
    prefix_id: int | None
    prefix: str
    every_window: bool  # a prefix token in front of every later window
    name: str = "strided"  # strided | llama-perplexity
    chunks: int | None = None  # llama-perplexity: the configured chunk limit (None: all)
    chunk_targets: int = 0  # llama-perplexity: targets scored per chunk (n_ctx - 1 - n_ctx // 2)


def token_window(window: int, stride: int, unit: str, bytes_per_token: float, max_positions: int | None,
                 strict: bool, name: str) -> tuple[int, int, str | None]:
    """Window and stride in tokens: converted from bytes if asked, clamped to the model keeping the overlap.

    >>> token_window(4096, 2048, "bytes", 4.2, 512, False, "m")[:2]
    (512, 256)
    """
    if unit == "bytes":
        window = max(2, round(window / bytes_per_token))
        stride = max(1, min(window, round(stride / bytes_per_token)))
    note = None
    if max_positions and window > max_positions:
        if strict:
            raise UserError(f"eval.window: {window} tokens exceeds {name}'s maximum of {max_positions} "
                            "positions; lower it, or drop strict_window to clamp")
        new_stride = max(1, min(max_positions, round(stride * max_positions / window)))
        note = (f"eval.window {window} tokens exceeds {name}'s maximum of {max_positions} positions; "
                f"window clamped to {max_positions} and stride {stride} scaled to {new_stride} "
                f"(the same overlap fraction)")
        window, stride = max_positions, new_stride
    return window, stride, note


def scored_counts(text: str, skip_bytes: int) -> tuple[int, int, int]:
    """(bytes, chars, words) of ``text`` whose first ``skip_bytes`` bytes are context only.

    Words are lm-eval's (pieces between runs of whitespace); a character or a
    word counts only when all its bytes are scored.
    """
    if skip_bytes <= 0:
        return len(text.encode("utf-8")), len(text), count_words(text)
    total = len(text.encode("utf-8"))
    seen, c = 0, 0
    while c < len(text) and seen < skip_bytes:
        seen += len(text[c].encode("utf-8"))
        c += 1
    starts = [0] + [m.end() for m in _WS.finditer(text)]
    words = sum(1 for s in starts if s >= c and (s > 0 or c == 0))
    return max(total - skip_bytes, 0), len(text) - c, words


def resolve_protocol(ev, prefix_id: int | None, prefix: str, bytes_per_token: float, max_positions: int | None,
                     model_name: str) -> tuple[Protocol, str | None]:
    """The protocol of one model × dataset from the eval config (``ev``), and a note if the window was clamped.

    With ``bos_every_window`` the prefix takes one input position of every window.
    """
    every = ev.prefix == "bos_every_window"
    window, stride, note = token_window(ev.window, ev.stride, ev.window_unit, bytes_per_token, max_positions,
                                        ev.strict_window, model_name)
    plan_w, plan_s = (window - 1, min(stride, window - 1)) if every else (window, stride)
    return Protocol(window=window, stride=plan_s, plan_window=plan_w, configured_window=ev.window,
                    configured_stride=ev.stride, window_unit=ev.window_unit, prefix_id=prefix_id, prefix=prefix,
                    every_window=every), note


def resolve_llama(ev, bos_id: int | None, adds_bos: bool, max_positions: int | None,
                  model_name: str) -> Protocol:
    """The llama-perplexity protocol: n_ctx = ``ev.window`` tokens, a BOS replacing each chunk's first token
    when the tokenizer adds one by itself (llama.cpp's ``llama_vocab_get_add_bos``)."""
    n_ctx = ev.window
    if ev.prefix != "auto":
        raise UserError(f"eval.prefix: protocol llama-perplexity puts a BOS in front exactly when the tokenizer "
                        f"adds one by itself; leave prefix at 'auto' (got {ev.prefix!r})")
    if ev.window_unit != "tokens":
        raise UserError("eval.window_unit: protocol llama-perplexity needs window (n_ctx) in tokens")
    if n_ctx < 3:
        raise UserError(f"eval.window: protocol llama-perplexity needs n_ctx >= 3 to score anything, got {n_ctx}")
    if max_positions and n_ctx > max_positions:
        raise UserError(f"eval.window: n_ctx {n_ctx} exceeds {model_name}'s maximum of {max_positions} positions")
    bos = bos_id if adds_bos and bos_id is not None else None
    return Protocol(window=n_ctx, stride=n_ctx, plan_window=n_ctx, configured_window=ev.window,
                    configured_stride=ev.stride, window_unit="tokens", prefix_id=bos,
                    prefix="bos_replaced" if bos is not None else "none", every_window=bos is not None,
                    name="llama-perplexity", chunks=ev.chunks, chunk_targets=n_ctx - 1 - n_ctx // 2)
