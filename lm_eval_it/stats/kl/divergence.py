"""Token-by-token comparison of a candidate model with a reference: KL, top-1 agreement, Δp.

Both models score the same windows in lockstep, batch by batch (the scorer
composes the two), so neither model's distributions are ever stored whole;
:class:`lm_eval_it.stats.kl.statistic.KLStats` reduces them per chunk. Per scored token, for T = 1 and every T of the sweep:

* forward KL(p_ref ‖ p_cand) = H(p_ref, p_cand) − H(p_ref) and reverse
  KL(p_cand ‖ p_ref), in nats (KL is asymmetric: both are reported);
* at T = 1: whether the two argmax tokens agree, and
  Δp = p_cand(true token) − p_ref(true token).

Example::

    >>> import torch
    >>> z = torch.tensor([[1.0, 2.0, 3.0]])
    >>> s = kl_stats(z, z, torch.tensor([2]), [1.0])
    >>> s["kl_fwd"].tolist(), s["agree"].tolist(), s["dp"].tolist()
    ([[0.0]], [True], [0.0])
"""

from __future__ import annotations

import math

import torch

from lm_eval_it.backends.logits import token_nll

LN2 = math.log(2.0)
KL_QUANTILES = (1.0, 0.999, 0.99, 0.95, 0.90, 0.5, 0.10, 0.05, 0.01, 0.001, 0.0)


KL_BLOCK = 1 << 22  # float64 elements per block of rows (32 MiB)


def kl_stats(ref_logits: torch.Tensor, cand_logits: torch.Tensor, targets: torch.Tensor, temperatures) -> dict:
    """Per-row forward/reverse KL (nats) for each T, argmax agreement, Δp and both NLLs at T = 1.

    KL is a small difference of log-probabilities: in float32 their rounding (~1e-7 each)
    swamps per-token KLs of 1e-6 between near-identical models, so the log-softmax and
    the expectation are taken in float64 (float32 on MPS, which has no float64), a block
    of rows at a time.
    """
    zr, zc = ref_logits.float(), cand_logits.float()
    n, vocab = zr.shape
    wide = torch.float32 if zr.device.type == "mps" else torch.float64
    fwd, rev = (torch.empty(n, len(temperatures), dtype=torch.float64) for _ in range(2))
    rows = max(1, KL_BLOCK // max(vocab, 1))
    for i in range(0, n, rows):
        r, c = zr[i : i + rows].to(wide), zc[i : i + rows].to(wide)
        for k, t in enumerate(temperatures):
            lr, lc = torch.log_softmax(r / t, -1), torch.log_softmax(c / t, -1)
            diff = lr - lc
            fwd[i : i + rows, k] = _expect(lr, diff).clamp_min(0).cpu()
            rev[i : i + rows, k] = _expect(lc, diff).neg_().clamp_min(0).cpu()
    nll_r, nll_c = token_nll(zr, targets), token_nll(zc, targets)
    return {"kl_fwd": fwd, "kl_rev": rev, "agree": (zr.argmax(-1) == zc.argmax(-1)).cpu(),
            "dp": (torch.exp(-nll_c) - torch.exp(-nll_r)).cpu(), "nll_ref": nll_r.cpu(), "nll_cand": nll_c.cpu()}


def _expect(logp: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Row sums of exp(logp)·x, with 0·x = 0 where logp = -inf (a masked entry: x may be ±inf or NaN there).

    The plain product is used, and only rows that came out NaN are summed again with the masked
    entries left out, so the all-finite case costs nothing extra.
    """
    s = (logp.exp() * x).sum(-1)
    bad = torch.isnan(s)
    if bad.any():
        lp, xb = logp[bad], x[bad]
        s[bad] = torch.where(lp == -math.inf, 0.0, lp.exp() * xb).sum(-1)
    return s


def kl_markdown(row: dict) -> str:
    kl = row["kl"]
    t1 = next(p for p in kl["per_temperature"] if p["temperature"] == 1.0)
    q = kl["kl_ref_cand_quantiles_nats"]
    lines = [f"#### {row['model']} against {row['kl_reference']} · {row['dataset']} ({kl['tokens']} tokens)", "",
             "| statistic | value |", "|---|--:|",
             f"| mean KL(ref ‖ cand), nats | {t1['kl_ref_cand_nats']:.6f} ± {t1['kl_ref_cand_se']:.6f} |",
             f"| mean KL(cand ‖ ref), nats | {t1['kl_cand_ref_nats']:.6f} ± {t1['kl_cand_ref_se']:.6f} |",
             *[f"| KL(ref ‖ cand) {name} | {v:.6f} |" for name, v in q.items()],
             f"| same top-1 | {100 * kl['same_top1']:.3f}% ± {100 * kl['same_top1_se']:.3f}% |",
             f"| RMS Δp | {100 * kl['delta_p_rms']:.3f}% |",
             f"| mean Δp | {100 * kl['delta_p_mean']:+.4f}% |",
             f"| PPL(cand) / PPL(ref) | {kl['ppl_ratio']:.6f} ± {kl['ppl_ratio_se']:.6f} |",
             f"| PPL(cand) − PPL(ref) | {kl['ppl_diff']:+.5f} ± {kl['ppl_diff_se']:.5f} |"]
    if len(kl["per_temperature"]) > 1:
        lines += ["", "| T | KL(ref ‖ cand) nats | KL(cand ‖ ref) nats |", "|--:|--:|--:|"]
        lines += [f"| {p['temperature']:g} | {p['kl_ref_cand_nats']:.6f} | {p['kl_cand_ref_nats']:.6f} |"
                  for p in kl["per_temperature"]]
    return "\n".join(lines) + "\n"
