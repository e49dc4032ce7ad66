"""The coding schedule (pure): which window each of B lanes codes in each round, and at which step.

The token stream ``S = [BOS] + ids`` is cut into windows of ``L`` targets, as ``lm-eval-it run`` cuts it
with ``window = stride = L``: window ``w`` feeds ``S[wL : wL + n]`` and predicts ``S[wL + 1 : wL + n + 1]``,
so its first input is the previous window's last target (context restarts at every window). The windows
are dealt to ``B`` lanes in contiguous runs; in round ``r`` lane ``j`` codes its ``r``-th window, and the
``B`` lanes step side by side, one token each per step, so the model runs one ``(B, 1)`` batch per step.
A lane's first input (except lane 0's BOS) is the last target of the lane before it, which the decoder
has not decoded yet: those few tokens (at most ``B − 1``) are sent first, at a uniform ``log2 V`` bits.

Both sides compute this from ``(n_ids, L, B)`` alone, so they run the same batch shapes in the same order.
Unlike a run, the last window is not back-filled to full length (its targets keep the context their own
window gives them); that changes a few targets' context, not the protocol of the others.

Example::

    >>> s = Schedule(n_ids=10, chunk=4, lanes=2)     # S has 11 tokens, 10 targets: windows of 4, 4, 2
    >>> s.windows, s.lane_windows, s.rounds
    (3, [[0, 1], [2]], 2)
    >>> s.lane_starts()                               # S-positions the decoder needs before round 0
    [8]
    >>> s.window_span(2)                              # inputs S[8:10], targets S[9:11]
    (8, 2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    n_ids: int   # text tokens (the targets); S = [BOS] + ids has n_ids + 1 tokens
    chunk: int   # L: targets per window
    lanes: int   # B: windows coded side by side

    @property
    def windows(self) -> int:
        return math.ceil(self.n_ids / self.chunk) if self.n_ids else 0

    @property
    def lane_windows(self) -> list[list[int]]:
        """The windows of each lane that has any: contiguous runs, as equal as can be."""
        per = math.ceil(self.windows / self.lanes) if self.windows else 0
        return [list(range(a, min(a + per, self.windows))) for a in range(0, self.windows, per)] if per else []

    @property
    def rounds(self) -> int:
        return max((len(w) for w in self.lane_windows), default=0)

    def window_span(self, w: int) -> tuple[int, int]:
        """``(first input's S-position, number of targets)`` of window ``w``."""
        return w * self.chunk, min(self.chunk, self.n_ids - w * self.chunk)

    def lane_starts(self) -> list[int]:
        """S-positions of the first inputs of lanes 1 … B−1: sent before round 0 (lane 0 starts with BOS)."""
        return [self.window_span(ws[0])[0] for ws in self.lane_windows[1:]]

    def round_windows(self, r: int) -> list[int | None]:
        """The window each lane codes in round ``r`` (``None``: the lane has no window left, it is padded)."""
        return [ws[r] if r < len(ws) else None for ws in self.lane_windows]
