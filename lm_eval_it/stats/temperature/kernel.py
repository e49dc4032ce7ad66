"""The sweep's fused kernel: one read of the logit row per temperature, compiled by ``torch.compile``.

With ``d = z − max z`` and the argmax left out (it contributes exactly 1, and 0 to the
moments), every statistic of softmax(z / T) comes from three sums per row and T:

    S0 = Σ exp(β d),   S1 = Σ exp(β d)·d,   S2 = Σ exp(β d)·d²

:func:`moments` computes them for all temperatures at once. Inductor turns it into one
vectorised loop per (row, T) that reads ``d`` once, evaluates ``exp2(d · β·log2 e)`` and
accumulates the three sums (float32 over blocks of :data:`COLS` entries, then float64 over
the blocks: float32 over a whole 49k row loses ~4e-6, blocks keep it at the float32 floor
of ~1e-7). The eager path in :mod:`lm_eval_it.stats.temperature.softmax` makes about seven
passes per T instead; this one makes one, and the T-independent work (max, mask) is done once.

Entries that must not count are set to :data:`MASK` (−1e18): ``exp`` is 0 there and so are
both products (a −inf logit would give 0·(−inf) = NaN). Ties with the maximum are all
masked and added back as ``ties − 1`` ones, so the sums equal the eager path's, which leaves
out only the first argmax.

:func:`compiled` returns the compiled kernel, or ``None`` where ``torch.compile`` cannot
build it (no C++ compiler, no Triton); the first block it computes for each shape is
checked against the eager formulas, and any failure falls back to them for the process.

Example::

    >>> z = torch.tensor([[0.0, 0.0, -1.0]]); dm, ties = prologue(z)
    >>> ties.tolist(), round(moments(dm, torch.tensor([1.0]))[0, 0, 0].item(), 7)   # S0 = e^-1 without the maxima
    ([2], 0.3678795)
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger(__name__)

COLS = 256  # entries summed in float32 before the float64 sum over blocks
MASK = -1e18  # exp(β·MASK) = 0 for every β ≥ 1e-15, and MASK² (1e36) is finite in float32
LOG2E = 1.0 / math.log(2.0)
CHECK_RTOL = 1e-5  # the first compiled block must match the eager formulas to this (float32 noise is ~1e-7)


def prologue(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dm, ties)``: ``z − max z`` with every maximum and every −inf set to :data:`MASK`, and the number
    of maxima per row (≥ 1)."""
    d = z - z.amax(dim=-1, keepdim=True)
    top = d == 0
    return torch.where(top, MASK, d.clamp_min(MASK)), top.sum(-1)


def moments(dm: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """``(3, rows, T)`` float64: S0, S1, S2 of ``dm`` at each β (see the module docstring)."""
    rows, vocab = dm.shape
    b2 = betas.to(torch.float64) * LOG2E
    hi = b2.to(dm.dtype)
    lo = (b2 - hi.to(torch.float64)).to(dm.dtype).view(1, -1, 1, 1)  # β·log2 e in two floats: exact to ~1e-15
    hi = hi.view(1, -1, 1, 1)
    full = vocab // COLS * COLS
    total = None
    for seg in (dm[:, :full].reshape(rows, 1, full // COLS, COLS), dm[:, full:].reshape(rows, 1, 1, vocab - full)):
        if seg.shape[-1] == 0 or seg.shape[-2] == 0:
            continue
        e = torch.exp2(seg * hi + seg * lo)
        ed = e * seg
        part = torch.stack([e.sum(-1), ed.sum(-1), (ed * seg).sum(-1)], 0).to(torch.float64).sum(-1)
        total = part if total is None else total + part
    return total if total is not None else torch.zeros(3, rows, betas.shape[0], dtype=torch.float64,
                                                       device=dm.device)


def finish(s: torch.Tensor, ties: torch.Tensor, d_y: torch.Tensor, betas: torch.Tensor) -> dict:
    """Entropy, NLL, top-1 probability, dNLL/dβ and d²NLL/dβ² (nats, float64, ``(rows, T)``) from the sums."""
    rest = s[0] + (ties.to(torch.float64) - 1.0).unsqueeze(-1)
    zsum = 1.0 + rest
    mean_d = s[1] / zsum
    beta = betas.to(torch.float64).view(1, -1)
    d_y = d_y.to(torch.float64).unsqueeze(-1)
    log_z = torch.log1p(rest)
    return {"entropy": log_z - beta * mean_d, "nll": log_z - beta * d_y, "top1_prob": 1.0 / zsum,
            "d1": mean_d - d_y, "d2": (s[2] / zsum - mean_d * mean_d).clamp_min(0)}


def fused_block(z: torch.Tensor, targets: torch.Tensor, betas: torch.Tensor, kernel=None) -> dict:
    """The statistics of one block of rows, as :func:`lm_eval_it.stats.temperature.softmax.softmax_stats`
    returns them (float64, on ``z``'s device); ``kernel`` is ``(prologue, moments)``, compiled or not."""
    pro, mom = kernel or (prologue, moments)
    dm, ties = pro(z)
    d_y = _target_gap(z, targets)
    out = finish(mom(dm, betas.to(z.device)), ties, d_y, betas.to(z.device))
    correct = d_y == 0
    tied = ties > 1
    if bool(tied.any()):  # the first argmax decides, as in the eager path
        correct = torch.where(tied, z.argmax(dim=-1) == targets, correct)
    out["top1_correct"] = correct
    return out


def _target_gap(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``z_y − max z`` per row, in z's dtype (the same float as the eager path's ``d_y``)."""
    return z.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - z.amax(dim=-1)


_COMPILED: dict[str, object] = {}
_CHECKED: set = set()


def compiled(device_type: str):
    """``(prologue, moments)`` compiled for ``device_type`` (``cpu``, ``cuda``), or ``None`` where
    torch.compile is unavailable or has failed in this process."""
    if device_type not in ("cpu", "cuda"):
        return None
    if device_type not in _COMPILED:
        try:
            _COMPILED[device_type] = (torch.compile(prologue, dynamic=None), torch.compile(moments, dynamic=None))
        except Exception as exc:  # noqa: BLE001 - any failure to build means: use the eager formulas
            log.warning("torch.compile is unavailable (%s); the sweep uses its eager kernel", exc)
            _COMPILED[device_type] = None
    return _COMPILED[device_type]


def checked_block(z, targets, betas, kernel) -> dict | None:
    """:func:`fused_block` with the compiled ``kernel``; the first block of each shape is checked against
    the uncompiled formulas. ``None`` (and a warning, once) when compiling or the check fails."""
    key = (z.device.type, z.shape[-1], betas.shape[0], z.dtype)
    try:
        if z.shape[0] > 1:
            torch._dynamo.mark_dynamic(z, 0)  # one compiled kernel for every block height
        out = fused_block(z, targets, betas, kernel)
    except Exception as exc:  # noqa: BLE001 - e.g. no C++ compiler for inductor: fall back, say so once
        return _give_up(z.device.type, f"compiling failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if key not in _CHECKED:
        ref = fused_block(z[:2], targets[:2], betas)  # the same formulas, run op by op
        for k in ("nll", "entropy", "top1_prob"):
            if not torch.allclose(out[k][:2], ref[k], rtol=CHECK_RTOL, atol=1e-6, equal_nan=True):
                return _give_up(z.device.type, f"its {k} differs from the eager formulas")
        _CHECKED.add(key)
    return out


def _give_up(device_type: str, why: str) -> None:
    if _COMPILED.get(device_type) is not None:
        log.warning("the compiled sweep kernel is off for this process (%s); using the eager one", why)
    _COMPILED[device_type] = None
    return None
