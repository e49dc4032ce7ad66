"""The llama.cpp backend's scorer: each engine batch of windows decoded as separate sequences, full logits.

Like ``llama-perplexity``: the memory is cleared before every batch, every window is its own
sequence (``seq_id`` = its row) starting at position 0, and logits are asked only for the
scored positions. A batch of more than ``n_batch`` tokens goes in several decodes, in row order;
each decode's logits are handed on as a zero-copy float32 view of llama.cpp's buffer and used
before the next decode overwrites it.

Example::

    >>> import numpy as np
    >>> plan_decodes(np.array([3, 2, 2]), n_batch=4)   # windows of 3, 2 and 2 tokens, 4 tokens per decode
    [[(0, 0, 3)], [(1, 0, 2), (2, 0, 2)]]
    >>> plan_decodes(np.array([6]), n_batch=4)          # longer than a decode: cut, one sequence
    [[(0, 0, 4)], [(0, 4, 6)]]
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from lm_eval_it.backends.logits import lockstep, token_nll

LOGIT_BUDGET = 1 << 25  # float32 logits handed on at once (128 MiB), as the Hugging Face scorer


def plan_decodes(lengths: np.ndarray, n_batch: int) -> list[list[tuple[int, int, int]]]:
    """Decodes of at most ``n_batch`` tokens, each a list of ``(row, from, to)`` token runs, row after row.

    As in llama-perplexity a window goes whole into one decode when it fits (a new decode starts
    rather than splitting it); only a window longer than ``n_batch`` is cut, its runs continuing
    the same sequence in the KV cache.
    """
    decodes: list[list[tuple[int, int, int]]] = [[]]
    room = n_batch
    for row, length in enumerate(int(x) for x in lengths):
        if length <= n_batch and length > room:
            decodes.append([])
            room = n_batch
        start = 0
        while start < length:
            if room == 0:
                decodes.append([])
                room = n_batch
            take = min(length - start, room)
            decodes[-1].append((row, start, start + take))
            start += take
            room -= take
    return [d for d in decodes if d]


class LlamaScorer:
    """Scores planned windows with one llama.cpp model (a :class:`~lm_eval_it.backends.base.WindowScorer`)."""

    def __init__(self, model, options, threads: int, reference=None, logit_budget: int = LOGIT_BUDGET):
        self.model, self.options, self.threads = model, options, threads
        self.reference = reference
        self.vocab = model.n_vocab
        self.device = "cpu"  # inputs stay on the host; llama.cpp places the work itself
        self.split_head = None
        self.logit_budget = logit_budget
        self._ctx = None

    def _context(self, rows: int, width: int):
        ctx = self._ctx
        if ctx is None or ctx.n_seq < rows or ctx.window < width:
            n_seq = max(rows, ctx.n_seq if ctx else 0)
            window = max(width, ctx.window if ctx else 0)
            self._ctx = None  # free the old one first
            o = self.options
            self._ctx = self.model.context(n_seq, window, o.n_batch, o.n_ubatch, self.threads, o.flash_attn)
        return self._ctx

    def _own(self, ids: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor, cols: torch.Tensor,
             targets: torch.Tensor) -> Iterator[tuple]:
        ids_np = ids.cpu().numpy()
        lengths = (mask.sum(1).cpu().numpy() if mask is not None else np.full(ids_np.shape[0], ids_np.shape[1]))
        ctx = self._context(ids_np.shape[0], ids_np.shape[1])
        ctx.clear()
        flat = rows.cpu().numpy().astype(np.int64) * ids_np.shape[1] + cols.cpu().numpy()
        if len(flat) > 1 and np.any(np.diff(flat) <= 0):
            raise ValueError("llama.cpp scorer: scored positions must come in row-major order")
        wanted = np.zeros(ids_np.shape, dtype=np.int8)
        wanted.reshape(-1)[flat] = 1
        done = 0
        for group in plan_decodes(lengths, ctx.n_batch):
            tok = np.concatenate([ids_np[r, a:b] for r, a, b in group])
            pos = np.concatenate([np.arange(a, b) for r, a, b in group])
            seq = np.concatenate([np.full(b - a, r) for r, a, b in group])
            want = np.concatenate([wanted[r, a:b] for r, a, b in group])
            logits = torch.from_numpy(ctx.decode(tok, pos, seq, want))
            step = max(1, self.logit_budget // self.vocab)
            for i in range(0, logits.shape[0], step):
                part = logits[i : i + step]
                j0, j1 = done + i, done + i + part.shape[0]
                yield j0, j1, part, None, token_nll(part, targets[j0:j1])
            done += logits.shape[0]

    def chunks(self, ids, mask, rows, cols, targets) -> Iterator[tuple]:
        """``(i0, i1, float32 logits, reference logits or None, NLL)`` slices in order (see the module doc)."""
        own = self._own(ids, mask, rows, cols, targets)
        if self.reference is None:
            yield from own
        else:
            yield from lockstep(own, self.reference.chunks(ids, mask, rows, cols, targets))
