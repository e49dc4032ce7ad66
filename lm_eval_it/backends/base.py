"""What the engine needs from a model backend, and nothing more (the full Protocol lands with the HF backend).

Capabilities are explicit: a statistic names the ones it needs, a backend the ones it has, and a
run whose statistic needs what its backend lacks is refused before anything runs.

Example::

    >>> Capability.FULL_LOGITS.value, Capability.TARGET_LOGPROBS in {Capability.TARGET_LOGPROBS}
    ('full_logits', True)
"""

from __future__ import annotations

from enum import Enum


class Capability(str, Enum):
    """What a backend can give for each scored position."""

    FULL_LOGITS = "full_logits"  # (rows × vocab) float32 logits: every statistic can run
    TARGET_LOGPROBS = "target_logprobs"  # only log p(target): NLL, bits per byte, context curve, Min-K%
