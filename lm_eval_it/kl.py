"""Token-by-token comparison of a candidate model with a reference: KL, top-1 agreement, Δp.

Both models score the same windows in lockstep, batch by batch, so neither
model's distributions are ever stored whole (memory is one logits chunk per
model). Per scored token, for T = 1 and every T of the sweep:

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

import numpy as np
import torch

from .errors import UserError
from .scoring import Scorer, concat_extra, token_nll
from .temperature import softmax_stats

LN2 = math.log(2.0)
KL_QUANTILES = (1.0, 0.999, 0.99, 0.95, 0.90, 0.5, 0.10, 0.05, 0.01, 0.001, 0.0)


def kl_stats(ref_logits: torch.Tensor, cand_logits: torch.Tensor, targets: torch.Tensor, temperatures) -> dict:
    """Per-row forward/reverse KL (nats) for each T, argmax agreement, Δp and both NLLs at T = 1."""
    zr, zc = ref_logits.float(), cand_logits.float()
    n = zr.shape[0]
    fwd, rev = torch.empty(n, len(temperatures)), torch.empty(n, len(temperatures))
    for k, t in enumerate(temperatures):
        lr, lc = torch.log_softmax(zr / t, -1), torch.log_softmax(zc / t, -1)
        diff = lr - lc
        fwd[:, k] = _expect(lr, diff).clamp_min(0).cpu()
        rev[:, k] = _expect(lc, diff).neg_().clamp_min(0).cpu()
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


class PairScorer(Scorer):
    """Scores the candidate, and the reference on the very same batches."""

    def __init__(self, candidate: Scorer, reference: Scorer, temperatures: list[float], cand_tok, ref_tok,
                 reference_name: str | None = None):
        if candidate.vocab != reference.vocab or cand_tok.get_vocab() != ref_tok.get_vocab():
            raise UserError("compare_to: the two models' vocabularies differ "
                            f"({candidate.vocab} vs {reference.vocab} entries); KL needs identical vocabularies")
        self.__dict__.update(candidate.__dict__)
        self.reference = reference
        self.reference_name = reference_name
        self.kl_temperatures = sorted(set(temperatures) | {1.0})

    def _batch_nll(self, ids, mask, rows, cols, targets) -> dict[str, torch.Tensor]:
        sel_c, pick_c = self._selected(ids, mask, rows, cols)
        sel_r, pick_r = self.reference._selected(ids, mask, rows, cols)
        chunk = max(1, self.logit_budget // (2 * self.vocab))
        parts: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(targets), chunk):
            tgt = targets[i : i + chunk]
            logits_c = pick_c(sel_c[i : i + chunk])
            stats = kl_stats(pick_r(sel_r[i : i + chunk]), logits_c, tgt, self.kl_temperatures)
            parts.setdefault("nll", []).append(stats.pop("nll_cand"))
            for k, v in stats.items():
                parts.setdefault("KL_" + k, []).append(v)
            if self.temperatures:
                for k, v in softmax_stats(logits_c, tgt, self.temperatures, derivatives=self.keep_hidden).items():
                    parts.setdefault("T_" + k, []).append(v)
        out = {k: torch.cat(v) for k, v in parts.items()}
        if self.keep_hidden and self.split_head:
            out["hidden"], out["target"] = sel_c.float(), targets
        return out


def _quantiles(x: np.ndarray) -> dict:
    return {("max" if q == 1 else "min" if q == 0 else f"p{q * 100:g}"): float(v)
            for q, v in zip(KL_QUANTILES, np.quantile(x, KL_QUANTILES))} if x.size else {}


def summarize_kl(scores, temperatures: list[float]) -> dict:
    """Means with standard errors, quantiles, top-1 agreement, Δp and the perplexity ratio."""
    cat = lambda key: concat_extra(scores, key).astype(np.float64)  # noqa: E731
    fwd, rev, agree, dp = cat("KL_kl_fwd"), cat("KL_kl_rev"), cat("KL_agree"), cat("KL_dp")
    nll_r = cat("KL_nll_ref")
    nll_c = np.concatenate([s.token_nll for s in scores]).astype(np.float64)
    n = nll_c.size
    se = lambda x: float(np.std(x, ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")  # noqa: E731
    per_t = []
    for k, t in enumerate(temperatures):
        per_t.append({"temperature": t,
                      "kl_ref_cand_nats": float(fwd[:, k].mean()), "kl_ref_cand_se": se(fwd[:, k]),
                      "kl_cand_ref_nats": float(rev[:, k].mean()), "kl_cand_ref_se": se(rev[:, k]),
                      "kl_ref_cand_bits": float(fwd[:, k].mean() / LN2), "kl_cand_ref_bits": float(rev[:, k].mean() / LN2)})
    k1 = temperatures.index(1.0)
    p_same = float(agree.mean())
    diff = nll_c - nll_r
    mean_r, mean_c = nll_r.mean(), nll_c.mean()
    ppl_r, ppl_c = math.exp(mean_r), math.exp(mean_c)
    cov = np.cov(np.stack([nll_c, nll_r]), ddof=1) / n if n > 1 else np.full((2, 2), np.nan)
    var_diff = ppl_c**2 * cov[0, 0] + ppl_r**2 * cov[1, 1] - 2 * ppl_c * ppl_r * cov[0, 1]
    return {
        "tokens": n,
        "per_temperature": per_t,
        "kl_ref_cand_quantiles_nats": _quantiles(fwd[:, k1]),
        "kl_cand_ref_quantiles_nats": _quantiles(rev[:, k1]),
        "same_top1": p_same, "same_top1_se": math.sqrt(p_same * (1 - p_same) / n) if n else float("nan"),
        "delta_p_rms": float(np.sqrt(np.mean(dp**2))), "delta_p_mean": float(dp.mean()),
        "delta_p_quantiles": _quantiles(dp),
        "ppl_ref": ppl_r, "ppl_cand": ppl_c,
        "ln_ppl_ratio": float(diff.mean()), "ln_ppl_ratio_se": se(diff),
        "ppl_ratio": math.exp(diff.mean()), "ppl_ratio_se": math.exp(diff.mean()) * se(diff),
        "ppl_diff": ppl_c - ppl_r, "ppl_diff_se": float(math.sqrt(max(var_diff, 0.0))),
    }


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
