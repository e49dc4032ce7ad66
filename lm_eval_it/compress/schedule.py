"""The coding schedule (pure): which window each of B lanes codes in each round, and at which step.

The token stream ``S = [BOS] + ids`` is cut into windows exactly as ``lm-eval-it run`` cuts it with
``window = stride = L`` (:func:`lm_eval_it.engine.windows.plan_windows`): window ``w`` feeds
``S[wL : wL + n]`` and predicts ``S[wL + 1 : wL + n + 1]``, so its first input is the previous window's last
target (context restarts at every window); the last window, when the targets do not fill it, is
back-filled to the full ``L`` and scores only the targets left (``final``). The full windows are dealt to
``B`` lanes in contiguous runs; in round ``r`` lane ``j`` codes its ``r``-th window, and the ``B`` lanes
step side by side, one token each per step, so the model runs one ``(B, 1)`` batch per step. A lane's
first input (except lane 0's BOS) is the last target of the lane before it, which the decoder has not
decoded yet: those few tokens (at most ``B − 1``) are sent first, at a uniform ``log2 V`` bits. The
back-filled window runs last, alone: its context is then decoded, whichever lanes it came from.

Both sides compute this from ``(n_ids, L, B)`` alone, so they run the same batch shapes in the same order.

Example::

    >>> s = Schedule(n_ids=10, chunk=4, lanes=2)     # S has 11 tokens, 10 targets: 4, 4, then 2 back-filled
    >>> s.windows, s.lane_windows, s.rounds
    (2, [[0], [1]], 1)
    >>> s.lane_starts()                               # S-positions the decoder needs before round 0
    [4]
    >>> s.final                                       # inputs S[6:10], scored from input 2: targets S[9:11]
    Window(start=6, length=4, score_from=2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from lm_eval_it.engine.windows import Window, plan_windows

CHUNK = 1024  # the default window (= stride) length
LANES = 64  # the default lanes: wider steps code more tokens per second, until the KV cache fills memory


@dataclass(frozen=True)
class Schedule:
    n_ids: int   # text tokens (the targets); S = [BOS] + ids has n_ids + 1 tokens
    chunk: int   # L: targets per window
    lanes: int   # B: windows coded side by side

    @cached_property
    def plan(self) -> list[Window]:
        """The run's windows over ``S`` (window = stride = chunk)."""
        return plan_windows(self.n_ids + 1, self.chunk, self.chunk) if self.n_ids else []

    @property
    def final(self) -> Window | None:
        """The back-filled last window (scores from ``score_from`` on), or ``None`` when every window is full."""
        return self.plan[-1] if self.plan and self.plan[-1].score_from > 0 else None

    @property
    def windows(self) -> int:
        """The windows the lanes code: all but a back-filled last one."""
        return len(self.plan) - (self.final is not None)

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
        return self.plan[w].start, self.plan[w].length

    def lane_starts(self) -> list[int]:
        """S-positions of the first inputs of lanes 1 … B−1: sent before round 0 (lane 0 starts with BOS)."""
        return [self.window_span(ws[0])[0] for ws in self.lane_windows[1:]]

    def round_windows(self, r: int) -> list[int | None]:
        """The window each lane codes in round ``r`` (``None``: the lane has no window left, it is padded)."""
        return [ws[r] if r < len(ws) else None for ws in self.lane_windows]
