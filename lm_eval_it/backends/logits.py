"""Backend-neutral kernels over scores: the NLL of targets from logits, and a scorer over target log-probs.

``token_nll`` is the one log-softmax every full-logits path uses (float32, whatever the model
dtype). :class:`TargetLogprobScorer` turns a backend that gives only ``log p(target)`` (an
OpenAI-compatible server's echoed prompt log-probs) into the engine's
:class:`~lm_eval_it.backends.base.WindowScorer`: no logits, NLL only.

Example::

    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> token_nll(logits, torch.tensor([0, 1])).tolist()  # ln 2, ln(1+e^2)
    [0.6931471824645996, 2.1269280910491943]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

import torch

LSE_BLOCK = 1 << 19  # CPU: floats per logsumexp call (2 MiB), so its passes over a row run in the L2 cache


def token_nll(logits: torch.Tensor, targets: torch.Tensor, block: int | None = LSE_BLOCK) -> torch.Tensor:
    """Negative log-likelihood (nats) of ``targets`` under ``logits`` rows, in float32.

    On CPU the log-sum-exp runs over blocks of about ``block`` floats: the same
    per-row reduction (bit for bit), but each block's max, exp and sum passes
    read the cache instead of main memory.
    """
    logits = logits.float()
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    rows = max(1, (block or 0) // max(1, logits.shape[-1]))
    if block is None or logits.device.type != "cpu" or logits.shape[0] <= rows:
        return torch.logsumexp(logits, dim=-1) - picked
    lse = torch.empty(logits.shape[0], dtype=torch.float32)
    for i in range(0, logits.shape[0], rows):
        torch.logsumexp(logits[i : i + rows], dim=-1, out=lse[i : i + rows])
    return lse - picked


class TargetLogprobScorer(ABC):
    """A scorer for backends that give only the targets' log-probabilities.

    Subclasses set ``vocab`` and ``device`` and implement :meth:`target_logprobs`; the engine
    gets one slice per batch with ``None`` for the logits, so only statistics that need no
    more than ``Capability.TARGET_LOGPROBS`` can run on it.
    """

    vocab: int
    device: str = "cpu"
    reference = None  # KL needs full logits of both models

    @abstractmethod
    def target_logprobs(self, ids: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor,
                        cols: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """``log p(targets[i])`` predicted at input position ``(rows[i], cols[i])``, natural log."""

    def chunks(self, ids, mask, rows, cols, targets) -> Iterator[tuple]:
        logprobs = self.target_logprobs(ids, mask, rows, cols, targets)
        yield 0, len(targets), None, None, (-logprobs).float()


def lockstep(own: Iterator[tuple], reference: Iterator[tuple]) -> Iterator[tuple]:
    """Two scorers' slices over the same positions merged: ``(i0, i1, logits, reference logits, NLL)``.

    Each side yields ``(i0, i1, logits, _, nll)`` covering ``0..n`` in order, cut where it likes;
    the merge yields the pieces between both sides' cuts. A side is advanced only once its
    current slice is used up, so a slice that is a view of a buffer the next step overwrites
    (llama.cpp's logits) is still intact when it is read.

    >>> a = iter([(0, 3, torch.zeros(3, 2), None, torch.zeros(3))])
    >>> b = iter([(0, 1, torch.ones(1, 2), None, torch.ones(1)), (1, 3, torch.ones(2, 2), None, torch.ones(2))])
    >>> [(i0, i1, ref.shape[0]) for i0, i1, _, ref, _ in lockstep(a, b)]
    [(0, 1, 1), (1, 3, 2)]
    """
    mine, theirs = next(own, None), next(reference, None)
    while mine is not None and theirs is not None:
        lo, hi = max(mine[0], theirs[0]), min(mine[1], theirs[1])
        if hi > lo:
            a, b = lo - mine[0], lo - theirs[0]
            n = hi - lo
            yield lo, hi, mine[2][a : a + n], theirs[2][b : b + n], mine[4][a : a + n]
        m_end, t_end = mine[1], theirs[1]
        if m_end <= t_end:
            mine = next(own, None)
        if t_end <= m_end:
            theirs = next(reference, None)
