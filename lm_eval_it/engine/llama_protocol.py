"""``protocol: llama-perplexity``: llama.cpp's perplexity protocol as a window plan (pure, no model).

``llama-perplexity -c n`` tokenises the text (with a BOS in front when the tokenizer adds one),
cuts the tokens into ``len // n`` chunks of ``n`` (the remainder is dropped), puts the BOS in
place of each chunk's first token (when the tokenizer adds one), and scores the second half of
each chunk: logits at chunk positions ``first = n // 2 … n − 2`` predict tokens ``first + 1 … n − 1``,
``n − 1 − first`` targets a chunk. ``--chunks K`` keeps the first K chunks.

Here each document is one such text (a single file read as one document is exactly
llama-perplexity's input) and ``eval.chunks`` counts chunks over the dataset in document order.
In the engine's terms (``S`` = the document's sequence, the prefix included) chunk ``c`` is a
window of ``S``:

* with a BOS: ``S = [BOS] + ids``; the window feeds ``[BOS] + S[c·n + 1 : c·n + n − 1]`` (the
  prefix put in front, as ``bos_every_window`` does) and scores from input position ``first``;
* without: ``S = ids``; the window feeds ``S[c·n : c·n + n − 1]`` and scores from ``first``.

The chunk's last token is never input: its logits would predict past the chunk and are not
scored, and a causal model's earlier logits do not depend on it.

Example::

    >>> plan_chunks([2050, 1000], n=512, bos=True, limit=None)     # 4 + 1 chunks, remainders dropped
    [[Window(start=1, length=510, score_from=255), Window(start=513, length=510, score_from=255), Window(start=1025, length=510, score_from=255), Window(start=1537, length=510, score_from=255)], [Window(start=1, length=510, score_from=255)]]
    >>> [len(p) for p in plan_chunks([2050, 1000], n=512, bos=False, limit=3)]
    [3, 0]
    >>> targets_per_chunk(512)
    255

The "PPL ± SE" it prints is :mod:`lm_eval_it.stats.llama_perplexity`.
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.engine.protocol import Protocol
from lm_eval_it.engine.windows import Window
from lm_eval_it.errors import UserError

NAME = "llama-perplexity"


def targets_per_chunk(n: int) -> int:
    """Targets scored per chunk of ``n`` tokens: ``n − 1 − n // 2``."""
    return n - 1 - n // 2


def plan_chunks(lengths, n: int, bos: bool, limit: int | None) -> list[list[Window]]:
    """Every document's chunks as windows; ``lengths`` are the sequences' lengths (``S``, the BOS included)."""
    if n < 4:
        raise UserError(f"protocol llama-perplexity: eval.window (n_ctx) {n} is too small; expected at least 4")
    first, left = n // 2, limit if limit is not None else math.inf
    plans = []
    for m in lengths:
        count = int(min(int(m) // n, left))
        left -= count
        if bos:
            plans.append([Window(c * n + 1, n - 2, first - 1) for c in range(count)])
        else:
            plans.append([Window(c * n, n - 1, first) for c in range(count)])
    return plans


def llama_protocol(ev, tokenizer_info: dict, bos_id: int | None, bos: str | None) -> Protocol:
    """The protocol that runs: n_ctx = ``eval.window``; a BOS replaces each chunk's first token if the tokenizer adds one."""
    if ev.prefix != "auto":
        raise UserError(f"protocol llama-perplexity puts the BOS as llama.cpp does (when the tokenizer adds one); "
                        f"eval.prefix must be auto, got {ev.prefix!r}")
    if ev.window_unit != "tokens":
        raise UserError("protocol llama-perplexity: eval.window is n_ctx in tokens; window_unit must be tokens")
    n = ev.window
    adds = bool(tokenizer_info.get("adds_bos")) and bos_id is not None
    return Protocol(window=n, stride=n, plan_window=n - 2 if adds else n - 1, configured_window=n,
                    configured_stride=ev.stride, window_unit="tokens", prefix_id=bos_id if adds else None,
                    prefix=f"bos_replaces_first:{bos}" if adds else "none", every_window=adds, name=NAME,
                    chunk_targets=targets_per_chunk(n))


def scored_bytes(plan, store_sequence, table: np.ndarray, docs: int) -> np.ndarray:
    """UTF-8 bytes of the targets each document's chunks score (``store_sequence(doc, a, b)`` reads ``S[a:b]``)."""
    out = np.zeros(docs, np.int64)
    for w in range(len(plan)):
        d, _, start, length, score_from = plan.row(w)
        out[d] += int(table[store_sequence(d, start + score_from + 1, start + length + 1)].sum())
    return out
