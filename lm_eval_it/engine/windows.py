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
"""

from __future__ import annotations

from typing import NamedTuple


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


def min_context(plan: list[Window]) -> int:
    """The fewest input tokens any scored target was predicted from."""
    return min((w.score_from + 1 for w in plan), default=0)
