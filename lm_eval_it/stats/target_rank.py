"""Target-rank buckets (GLTR, Gehrmann et al. 2019): how often the model ranks the true next token 1st, top 10, ...

rank = 1 + #{j : z_j > z_target} over the vocabulary's logits z at T = 1 (a rank does not depend
on T > 0). **Ties count in the target's favour**: an entry whose logit equals the target's does
not push it down, so a target tied for the largest logit has rank 1. Each scored token falls in
one of five buckets — rank 1, 2–10, 11–100, 101–1000, above 1000 — summed per document (exact
integer counts), so each bucket's share of the dataset's tokens, ``Σ count / Σ tokens``, gets a
95% interval over documents: the linearised t interval of :func:`lm_eval_it.stats.intervals.ratio_stats`
taken on the log-odds scale, ``expit(logit p ± t·se / (p(1 − p)))`` (:func:`share_interval`), so it
stays inside (0, 1) and is skewed away from 0 as a rare bucket's share is. Simulated (issue #21 review;
tests/stats/test_target_rank_intervals.py holds its core) for shares of 0.001–0.02 over 10–50 documents
whose own shares scatter around the true one: the share-scale t interval clipped to [0, 1] covered
88–98% with moderate scatter and 54–95% with extreme scatter; the log-odds one 94–99% and 86–99%. A bucket
no token fell in (or every token did) gets **no** interval: zero spread over documents says nothing
about a share near 0 (or 1). Shown only with at least
:data:`lm_eval_it.stats.intervals.MIN_DOCUMENTS` scored documents. Per group too, and in a
comparison the Δ share of rank 1 against the baseline. Per-token output: a ``target_rank`` column.

Cost: one comparison per vocabulary entry per scored token (no sort): cheap enough to be on by
default, but it is **off** by default (``eval.target_rank: true`` turns it on): issue #21 keeps a
default run's reports identical (a new section in every summary.md and report.html, and a new
per-token column, would change them), so turning it on for everyone is a separate, one-line
decision (the field's default). It needs full logits (``Capability.FULL_LOGITS``).

Example::

    >>> logits = torch.tensor([[0.0, 2.0, 2.0, 1.0], [3.0, 1.0, 2.0, 0.0]])
    >>> target_ranks(logits, torch.tensor([2, 3])).tolist()    # row 0: tied for the top → 1
    [1, 4]
    >>> bucket_of(torch.tensor([1, 2, 10, 11, 100, 101, 1000, 1001])).tolist()
    [0, 1, 1, 2, 2, 3, 3, 4]
    >>> share_interval(0.0, 0.0, 9.0) is None                    # no document hit the bucket: no interval
    True
    >>> [round(x, 4) for x in share_interval(0.01, 0.004, 9.0)]   # skewed away from 0: p − 0.0060, p + 0.0146
    [0.004, 0.0246]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lm_eval_it.backends.base import Capability
from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.base import Plugin, Scored, Setup, Statistic, Sum
from lm_eval_it.stats.intervals import INTERVAL_LABEL, MIN_DOCUMENTS, ratio_stats
from lm_eval_it.stats.student_t import t_quantile
from lm_eval_it.stats.tables import cell, md_table

EDGES = (1, 10, 100, 1000)  # upper rank of each bucket but the last
BUCKETS = ("1", "2-10", "11-100", "101-1000", ">1000")
LABELS = ("rank 1", "2–10", "11–100", "101–1000", "> 1000")


def target_ranks(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 + the number of logits strictly above the target's, per row (int64)."""
    z = logits.gather(1, targets.view(-1, 1))
    return (logits > z).sum(dim=1) + 1


def bucket_of(ranks: torch.Tensor) -> torch.Tensor:
    """Bucket index 0–4 of each rank: 1 | 2–10 | 11–100 | 101–1000 | > 1000."""
    return torch.bucketize(ranks, torch.tensor(EDGES, device=ranks.device, dtype=ranks.dtype), right=False)


def share_interval(p: float, se: float | None, df: float | None, level: float = 0.95) -> list | None:
    """The t interval of a share ``p`` (standard error ``se``, ``df``) on the log-odds scale, mapped back.

    ``None`` when there is none to give: no se, or ``p`` at 0 or 1 (no token, or every token, in the bucket).
    """
    if se is None or df is None or not 0.0 < p < 1.0:
        return None
    centre, half = math.log(p / (1.0 - p)), t_quantile(0.5 + level / 2.0, df) * se / (p * (1.0 - p))
    return [1.0 / (1.0 + math.exp(half - centre)), 1.0 / (1.0 + math.exp(-centre - half))]


def bucket_shares(counts: np.ndarray, level: float = 0.95) -> dict:
    """Shares, counts and intervals from per-document bucket counts ``(documents, 5)``."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, len(BUCKETS))
    tokens = counts.sum(axis=1)
    total = counts.sum(axis=0)
    n = float(total.sum())
    scored = int((tokens > 0).sum())
    out = {"tokens": int(n), "documents": scored, "counts": dict(zip(BUCKETS, (int(c) for c in total))),
           "shares": dict(zip(BUCKETS, (float(c / n) if n else None for c in total))), "intervals": {}}
    for k, name in enumerate(BUCKETS):
        r = ratio_stats(counts[:, k], tokens, level) if scored >= MIN_DOCUMENTS else None
        out["intervals"][name] = None if r is None else share_interval(r["estimate"], r["se"], r["df"], level)
    return out


class TargetRankStats(Statistic):
    """Per row a one-hot of its bucket, summed per document (kept per document for the intervals)."""

    name = "target_rank"

    def fields(self) -> list:
        return [Sum("buckets", (len(BUCKETS),), per_document=True)]

    def rows(self, chunk) -> dict:
        rank = target_ranks(chunk.logits, chunk.targets)
        onehot = torch.zeros(len(rank), len(BUCKETS), dtype=torch.float64, device=rank.device)
        onehot.scatter_(1, bucket_of(rank).view(-1, 1), 1.0)
        return {"buckets": onehot, "rank": rank}

    def summarize(self, totals: dict, context: dict) -> dict | None:
        per_doc = context["per_document"]["buckets"]
        return bucket_shares(per_doc) if context["tokens"] else None

    def columns(self, rows: dict, mask: np.ndarray) -> dict:
        return {"target_rank": np.asarray(rows["rank"])[mask].astype(np.int32)}


class TargetRankPlugin(Plugin):
    name, keys, config_keys = "target_rank", ("target_rank",), ("target_rank",)
    needs = frozenset({Capability.FULL_LOGITS})
    order = {"markdown": 65, "html": 65, "terminal": 65}
    compare_columns = (("target_rank_1_delta", "Δ share of rank 1", "+.4f"),)

    def __init__(self):
        self.statistic = TargetRankStats()
        self.per_doc = (np.zeros((0, len(BUCKETS))), [])

    @classmethod
    def build(cls, setup: Setup) -> "TargetRankPlugin | None":
        return cls() if getattr(setup.eval, "target_rank", False) else None

    def summarize(self, totals: dict, context: dict) -> dict | None:
        self.per_doc = (context["per_document"]["buckets"], context.get("documents", []))
        return self.statistic.summarize(totals, context)

    def block(self, scored: Scored) -> dict:
        out = scored.summary
        if out is not None and scored.groups:
            counts, docs = self.per_doc
            labels = np.array([scored.groups[d] for d in docs], dtype=object)
            out["groups"] = {g: bucket_shares(counts[labels == g]) for g in dict.fromkeys(labels.tolist())}
        return {"target_rank": out}

    @classmethod
    def compare(cls, row: dict, base: dict) -> dict:
        a, b = row.get("target_rank"), base.get("target_rank")
        if row is base or not a or not b or a["shares"]["1"] is None or b["shares"]["1"] is None:
            return {"target_rank_1_delta": None}
        return {"target_rank_1_delta": a["shares"]["1"] - b["shares"]["1"]}

    @classmethod
    def table(cls, rows: list[dict]) -> dict:
        out = []
        for r in rows:
            tr = r["target_rank"]
            out.append([r["model"], r["dataset"]] + [cell(tr["shares"][b], tr["intervals"].get(b)) for b in BUCKETS]
                       + [str(tr["tokens"])])
            for g, s in (tr.get("groups") or {}).items():
                out.append([r["model"], f"{r['dataset']} · {g}"]
                           + [cell(s["shares"][b], s["intervals"].get(b)) for b in BUCKETS] + [str(s["tokens"])])
        return {"headers": ["model", "dataset"] + list(LABELS) + ["tokens"], "rows": out, "left": 2}

    @classmethod
    def note(cls) -> str:
        return ("Share of scored tokens whose target the model ranks 1st, 2nd–10th, ... at T = 1 (GLTR, Gehrmann et "
                "al. 2019; ties count in the target's favour). Intervals: " + INTERVAL_LABEL + " on the log-odds scale, "
                f"shown with at least {MIN_DOCUMENTS} scored documents; none for a bucket no token fell in.")

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        rows = [r for r in rows if r.get("target_rank")]
        if not rows:
            return ""
        return "\n".join(["## Target rank (GLTR)", "", md_table(cls.table(rows)), "", cls.note(), ""])

    @classmethod
    def terminal(cls, rows: list[dict]) -> str:
        rows = [r for r in rows if r.get("target_rank")]
        if not rows:
            return ""
        t = {"headers": ["model", "dataset"] + list(LABELS), "left": 2,
             "rows": [[r["model"], r["dataset"]] + [_f(r["target_rank"]["shares"][b], ".3f") for b in BUCKETS]
                      for r in rows]}
        return "\n".join(["## Target rank (GLTR)", "", md_table(t), "", "Share of tokens by the rank of their target.", ""])

    @classmethod
    def html(cls, results: dict) -> list:
        rows = [r for r in results["results"] if r.get("target_rank")]
        if not rows:
            return []
        blocks = [{"table": cls.table(rows)}, {"note": cls.note()}]
        deltas = [(e["model"], t["baseline"], e.get("target_rank_1_delta")) for t in results.get("comparison") or []
                  for e in t["rows"] if e.get("target_rank_1_delta") is not None]
        if deltas:
            blocks.append({"table": {"headers": ["model", "baseline", "Δ share of rank 1"], "left": 2,
                                     "rows": [[m, b, _f(d, "+.4f")] for m, b, d in deltas]}})
        return [("Target rank (GLTR)", blocks)]
