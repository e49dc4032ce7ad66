"""Window planning: which tokens each forward pass sees and which it scores.

Pure functions, no model. A document becomes the sequence
``S = [prefix] + tokens``; the targets are ``S[1:]``, so every text token is
scored exactly once (with ``prefix: none`` the first token is context only).

A :class:`Window` feeds ``S[start:start+length]`` to the model. Input position
``p`` predicts ``S[start+p+1]``; positions ``p >= score_from`` are scored.

* The first window starts at 0 and scores everything it sees.
* Each later window ends ``stride`` targets further on and scores only the
  targets no earlier window scored, so each of them has at least
  ``window - stride + 1`` tokens of context.
* The last window is back-filled to the full ``window`` length, so its
  leftover targets get full context too.

With ``stride == window`` this is exactly lm-eval's ``loglikelihood_rolling``
(``get_rolling_token_windows`` with ``context_len=1``).

Example::

    >>> plan_windows(n=11, window=4, stride=4)   # 10 targets
    [Window(start=0, length=4, score_from=0), Window(start=4, length=4, score_from=0), Window(start=6, length=4, score_from=2)]

The last window re-reads two already-scored tokens as context and scores the
final two targets.

A run's windows, over all its documents, are one :class:`WindowPlan`: a row
per window in named int64 columns (``doc``, ``index``, ``start``, ``length``,
``score_from``)::

    >>> plan = WindowPlan.of([plan_windows(11, 4, 4), plan_windows(3, 4, 4)])
    >>> plan.doc.tolist(), plan.length.tolist(), int(plan.scored.sum()), plan.n_scored([2, 3])
    ([0, 0, 0, 1], [4, 4, 4, 2], 12, 4)
    >>> plan.row(2)
    PlanRow(doc=0, index=2, start=6, length=4, score_from=2)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Iterable, NamedTuple

import numpy as np


class Window(NamedTuple):
    start: int
    length: int
    score_from: int

    @property
    def n_scored(self) -> int:
        return self.length - self.score_from

    def targets(self) -> range:
        """Indices into ``S`` of the targets this window scores."""
        return range(self.start + self.score_from + 1, self.start + self.length + 1)


def plan_windows(n: int, window: int, stride: int) -> list[Window]:
    """Plan the windows for a sequence of ``n`` ids (prefix included).

    ``n - 1`` targets are scored; a sequence of 0 or 1 ids has none.
    """
    if window < 1 or not 1 <= stride <= window:
        raise ValueError(f"need 1 <= stride <= window, got window={window}, stride={stride}")
    n_targets = n - 1
    if n_targets <= 0:
        return []
    first = min(window, n_targets)
    plan = [Window(0, first, 0)]
    scored_end = first  # targets S[1..scored_end] are scored
    while scored_end < n_targets:
        end = min(scored_end + stride, n_targets)
        start = end - window
        plan.append(Window(start, window, scored_end - start))
        scored_end = end
    return plan


def plan_chunks(n: int, n_ctx: int, bos: bool, max_chunks: int | None = None) -> list[Window]:
    """llama-perplexity's chunks of a sequence of ``n`` ids (``S``, the document BOS included when ``bos``).

    Chunk ``c`` is ``S[c*n_ctx:(c+1)*n_ctx]`` (a remainder is dropped); its input positions
    ``n_ctx // 2 .. n_ctx - 2`` are scored. With ``bos`` the chunk's first id is *replaced* by BOS: a
    later chunk's window starts one id on and is one shorter, and the executor's per-window prefix
    (``every_window``) puts the BOS in front. At most ``max_chunks`` chunks.

    >>> plan_chunks(9, 4, bos=True)     # S = [BOS, t0..t7]: 2 chunks
    [Window(start=0, length=3, score_from=2), Window(start=5, length=2, score_from=1)]
    >>> plan_chunks(9, 4, bos=False)    # no BOS: the remainder S[8] is dropped
    [Window(start=0, length=3, score_from=2), Window(start=4, length=3, score_from=2)]
    """
    first = n_ctx // 2
    count = n // n_ctx if max_chunks is None else min(n // n_ctx, max_chunks)
    out = []
    for c in range(count):
        if bos and c > 0:
            out.append(Window(c * n_ctx + 1, n_ctx - 2, first - 1))
        else:
            out.append(Window(c * n_ctx, n_ctx - 1, first))
    return out


def min_context(plan: list[Window]) -> int:
    """The fewest input tokens any scored target was predicted from."""
    return min((w.score_from + 1 for w in plan), default=0)


class PlanRow(NamedTuple):
    """One window of a :class:`WindowPlan`, as Python ints."""

    doc: int
    index: int  # the window's index within its document
    start: int
    length: int
    score_from: int


COLUMNS = PlanRow._fields


@dataclass(frozen=True, eq=False)
class WindowPlan:
    """Every window of a run, one row per window, as named int64 columns.

    The five columns are rows of one contiguous ``(5, windows)`` block (40 bytes a
    window); rows are in document order, each document's windows in order.
    """

    doc: np.ndarray  # the document
    index: np.ndarray  # the window's index within its document
    start: np.ndarray  # first input position in S
    length: np.ndarray  # input positions
    score_from: np.ndarray  # input positions before this are context only

    @classmethod
    def of(cls, plans: Iterable[list[Window]]) -> WindowPlan:
        """The plan of documents ``0, 1, …`` from each one's windows (:func:`plan_windows`)."""
        flat = chain.from_iterable((d, k, w.start, w.length, w.score_from)
                                   for d, plan in enumerate(plans) for k, w in enumerate(plan))
        return cls.from_block(np.fromiter(flat, dtype=np.int64).reshape(-1, len(COLUMNS)).T)

    @classmethod
    def from_block(cls, block: np.ndarray) -> WindowPlan:
        """A plan over a ``(5, windows)`` int64 block, the columns in :data:`COLUMNS` order."""
        block = np.ascontiguousarray(block, dtype=np.int64).reshape(len(COLUMNS), -1)
        return cls(*block)

    def __len__(self) -> int:
        return len(self.doc)

    @property
    def scored(self) -> np.ndarray:
        """Targets each window scores (a new array: for a few rows, :meth:`n_scored`)."""
        return self.length - self.score_from

    def n_scored(self, rows) -> int:
        """Targets the windows ``rows`` score, together."""
        return int((self.length[rows] - self.score_from[rows]).sum())

    def row(self, w: int) -> PlanRow:
        """Window ``w``."""
        return PlanRow(int(self.doc[w]), int(self.index[w]), int(self.start[w]), int(self.length[w]),
                       int(self.score_from[w]))
