"""The sweep's fused kernel: one read of the logit row per temperature, compiled by ``torch.compile``.

With ``d = z − max z`` and the argmax left out (it contributes exactly 1, and 0 to the
moments), every statistic of softmax(z / T) comes from three sums per row and T:

    S0 = Σ exp(β d),   S1 = Σ exp(β d)·d,   S2 = Σ exp(β d)·d²

:func:`sums` computes them for all temperatures at once, compiled as one function: inductor
fuses the max, the mask and the exponentials into loops that read each row from cache, evaluate
``exp2(d · β·log2 e)`` and accumulate the three sums together (float32 over blocks of
:data:`COLS` entries, then float64 over the blocks: float32 over a whole 49k row loses ~4e-6,
blocks keep it at the float32 floor of ~1e-7). Where one β is twice another the exponentials
are squared instead of computed (exp(2βd) = exp(βd)², :func:`square_plan`: three of the
default nine). The eager path in :mod:`lm_eval_it.stats.temperature.softmax` makes about seven
passes over the row per T instead, and the T-independent work (max, mask) once per T.

Entries that must not count are set to :data:`MASK` (−1e18): ``exp`` is 0 there and so are
both products (a −inf logit would give 0·(−inf) = NaN). Ties with the maximum are all
masked and added back as ``ties − 1`` ones, so the sums equal the eager path's, which leaves
out only the first argmax.

:func:`compiled` returns the compiled kernel, or ``None`` where ``torch.compile`` cannot
build it (no C++ compiler, no Triton); the whole first block it computes for each shape is
checked against the same formulas run op by op (all five statistics and the top-1 hits, to float32
rounding: :data:`CHECK_TOL`),
and any failure falls back to the eager path for the process.

Example::

    >>> s, ties = moments(torch.tensor([[0.0, 0.0, -1.0]]), torch.tensor([1.0]))
    >>> ties.tolist(), round(s[0, 0, 0].item(), 7)   # two maxima; S0 = e^-1 without them
    ([2], 0.3678795)
"""

from __future__ import annotations

import logging
import math

import torch

log = logging.getLogger(__name__)

COLS = 512  # entries summed in float32 before the float64 sum over blocks
MASK = -1e18  # exp(β·MASK) = 0 for every β ≥ 1e-15, and MASK² (1e36) is finite in float32
LOG2E = 1.0 / math.log(2.0)
RECOMPILE_LIMIT = 64  # compiled variants of the kernel per process (vocabulary, block height 1, temperature plan)
# (rtol, atol as a share of the block's scale) within which the first compiled block must match the same
# formulas run op by op: float32 noise is ~1e-7 on values, a few 1e-6 on the cancelling slope and curvature
CHECK_TOL = {"nll": (2e-6, 1e-7), "entropy": (2e-6, 1e-7), "top1_prob": (2e-6, 1e-7), "d1": (3e-5, 1e-5),
             "d2": (3e-5, 1e-5)}


def mask(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dm, top)``: ``d = z − max z`` with every maximum and every −inf set to :data:`MASK`, and where the
    maxima are."""
    top = d == 0
    return torch.where(top, MASK, d.clamp_min(MASK)), top


def square_plan(betas) -> tuple:
    """The order in which :func:`moments` forms each temperature's exponentials: ``(k, j)`` squares those of
    β_j when β_k = 2·β_j exactly (exp(2βd) = exp(βd)², one multiply instead of an exp2), ``(k, -1)`` computes them.

    >>> square_plan([2.0, 1.0, 0.7, 0.5])     # T = 0.5, 1, 1.43, 2: β = 2 from β = 1, and β = 1 from β = 0.5
    ((3, -1), (2, -1), (1, 3), (0, 1))
    """
    b = [float(x) for x in betas]
    out = []
    for k in sorted(range(len(b)), key=lambda i: b[i]):
        half = [j for j, _ in out if b[j] * 2.0 == b[k]]
        out.append((k, half[0] if half else -1))
    return tuple(out)


def moments(d: torch.Tensor, betas: torch.Tensor, plan: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, ties)``: S0, S1, S2 at each β, ``(3, rows, T)`` float64, of ``d = z − max z`` with its maxima and
    −inf entries masked (see the module docstring), and the number of maxima per row. One blocked iteration
    for all of it, so that inductor fuses the mask, the count and every exponential into one loop."""
    rows, vocab = d.shape
    b2 = (betas.to(torch.float64) * LOG2E).to(d.dtype)
    full = vocab // COLS * COLS
    plan = plan if plan is not None else tuple((k, -1) for k in range(betas.shape[0]))
    total, ties = None, None
    for seg in (d[:, :full].reshape(rows, full // COLS, COLS), d[:, full:].reshape(rows, 1, vocab - full)):
        if seg.shape[-1] == 0 or seg.shape[-2] == 0:
            continue
        seg, top = mask(seg)
        count = top.sum(-1).sum(-1)
        exps, part = {}, {}
        for k, j in plan:
            e = exps[j] * exps[j] if j >= 0 else torch.exp2(seg * b2[k])
            exps[k] = e
            ed = e * seg
            part[k] = torch.stack([e.sum(-1), ed.sum(-1), (ed * seg).sum(-1)], 0).to(torch.float64).sum(-1)
        block = torch.stack([part[k] for k in range(betas.shape[0])], -1)
        total, ties = (block, count) if total is None else (total + block, ties + count)
    return total, ties


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


def sums(z: torch.Tensor, targets: torch.Tensor, betas: torch.Tensor, plan: tuple | None = None) -> tuple:
    """``(stats, ties, d_y)`` of one block of float32 logits: :func:`finish`'s statistics of :func:`moments`,
    the number of maxima and ``z_y − max z``. Compiled as one function: one pass for the maximum, one fused
    loop for everything else, and the per-row float64 arithmetic in the same call."""
    zmax = z.amax(dim=-1, keepdim=True)
    s, ties = moments(z - zmax, betas, plan)
    d_y = (z.gather(-1, targets.unsqueeze(-1)) - zmax).squeeze(-1)
    return finish(s, ties, d_y, betas), ties, d_y


def fused_block(z: torch.Tensor, targets: torch.Tensor, betas: torch.Tensor, kernel=None) -> dict:
    """The statistics of one block of rows, as :func:`lm_eval_it.stats.temperature.softmax.softmax_stats`
    returns them (float64, on ``z``'s device); ``kernel`` is :func:`sums`, compiled or not."""
    plan = square_plan(betas.tolist())  # from the host copy: no device sync per block
    betas = betas.to(z.device)
    out, ties, d_y = (kernel or sums)(z, targets, betas, plan)
    correct = d_y == 0
    tied = ties > 1
    if bool(tied.any()):  # the first argmax decides, as in the eager path
        correct = torch.where(tied, z.argmax(dim=-1) == targets, correct)
    out["top1_correct"], out["target_gap"] = correct, d_y
    return out


_COMPILED: dict[str, object] = {}
_CHECKED: set = set()


def compiled(device_type: str):
    """:func:`sums` compiled for ``device_type`` (``cpu``, ``cuda``), or ``None`` where torch.compile is
    unavailable or has failed in this process."""
    if device_type not in ("cpu", "cuda"):
        return None
    if device_type not in _COMPILED:
        try:
            _COMPILED[device_type] = torch.compile(sums, dynamic=None)
        except Exception as exc:  # noqa: BLE001 - any failure to build means: use the eager formulas
            log.warning("torch.compile is unavailable (%s); the sweep uses its eager kernel", exc)
            _COMPILED[device_type] = None
    return _COMPILED[device_type]


def checked_block(z, targets, betas, kernel) -> dict | None:
    """:func:`fused_block` with the compiled ``kernel``; the first block of each shape is checked against
    the uncompiled formulas. ``None`` (and a warning, once) when compiling or the check fails."""
    key = (z.device.type, z.shape[-1], z.shape[0] == 1, z.dtype, square_plan(betas.tolist()))
    try:
        if z.shape[0] > 1:  # one compiled kernel for every block height
            torch._dynamo.maybe_mark_dynamic(z, 0)
            torch._dynamo.maybe_mark_dynamic(targets, 0)
        # past dynamo's limit of compiled variants it would run the function uncompiled without a word:
        # raise instead, so that the fallback below says so and the run reports "eager"
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT, fail_on_recompile_limit_hit=True):
            out = fused_block(z, targets, betas, kernel)
    except Exception as exc:  # noqa: BLE001 - e.g. no C++ compiler for inductor: fall back, say so once
        return _give_up(z.device.type, f"compiling failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    if key not in _CHECKED:
        ref = fused_block(z, targets, betas)  # the same formulas, run op by op, on the whole first block
        for k in ("nll", "entropy", "top1_prob", "d1", "d2", "top1_correct"):
            if not _close(out[k], ref[k], *CHECK_TOL.get(k, (0.0, 0.0))):
                return _give_up(z.device.type, f"its {k} differs from the eager formulas")
        _CHECKED.add(key)
    return out


def _close(a: torch.Tensor, b: torch.Tensor, rtol: float, atol: float) -> bool:
    """Equal up to float32 rounding: ``rtol`` relative, and ``atol`` of the block's largest value (plus one)."""
    if a.dtype == torch.bool:
        return bool(torch.equal(a, b))
    scale = 1.0 + float(b.abs().nan_to_num(0.0, 0.0, 0.0).max()) if b.numel() else 1.0
    return bool(torch.allclose(a, b, rtol=rtol, atol=atol * scale, equal_nan=True))


def _give_up(device_type: str, why: str) -> None:
    if _COMPILED.get(device_type) is not None:
        log.warning("the compiled sweep kernel is off for this process (%s); using the eager one", why)
    _COMPILED[device_type] = None
    return None
