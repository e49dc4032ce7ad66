"""llama.cpp's "Final estimate: PPL = X +/- Y" for ``protocol: llama-perplexity`` (issue #22).

Computed as llama.cpp's ``tools/perplexity`` ``perplexity()`` does, over all N scored tokens
(the second half of every chunk, :func:`lm_eval_it.engine.windows.plan_chunks`): per token its
NLL and NLL² are summed per document (float64), then over documents;
``mean = ΣNLL / N``, ``var = ΣNLL² / N − mean²``, ``se = sqrt(var / (N − 1))``,
``PPL = exp(mean)`` and its ± is ``se · PPL`` (the delta method, as llama.cpp reports it).
The se treats tokens as independent, as llama.cpp does: it is not an interval over documents.

Example::

    >>> r = llama_ppl(6.0, 14.0, 3)                 # NLLs 1, 2, 3
    >>> round(r["nll_mean"], 6), round(r["nll_se"], 6), round(r["ppl"], 4), round(r["ppl_se"], 4)
    (2.0, 0.57735, 7.3891, 4.2661)
    >>> ppl_line({"ppl": 12.34561, "ppl_se": 0.123451, "chunks": 140, "n_ctx": 512})
    'PPL = 12.3456 ± 0.12345, 140 chunks of 512'
"""

from __future__ import annotations

import math

from lm_eval_it.stats.base import Plugin, Scored, Setup, Statistic, Sum
from lm_eval_it.stats.tables import md_table

HOW = ("llama.cpp perplexity: chunks of n_ctx tokens per document (remainder dropped), the second half of each "
       "scored; mean = ΣNLL/N, var = ΣNLL²/N − mean², se = sqrt(var/(N−1)), PPL = exp(mean) ± se·PPL")


def llama_ppl(sum_nll: float, sum_nll2: float, n: int) -> dict:
    """Mean NLL, its se, PPL and its ± from the sums over ``n`` scored tokens (llama.cpp's formulas)."""
    mean = sum_nll / n
    var = sum_nll2 / n - mean * mean
    se = math.sqrt(var / (n - 1)) if n > 1 and var > 0 else 0.0
    ppl = math.exp(mean)
    return {"ppl": ppl, "ppl_se": se * ppl, "nll_mean": mean, "nll_se": se}


def ppl_line(block: dict) -> str:
    """The summary line: ``PPL = X ± Y, C chunks of n_ctx``."""
    return f"PPL = {block['ppl']:.4f} ± {block['ppl_se']:.5f}, {block['chunks']} chunks of {block['n_ctx']}"


class LlamaPerplexityStats(Statistic):
    """Per row its NLL and NLL² in float64, summed."""

    name = "llama_perplexity"

    def fields(self) -> list:
        return [Sum("nll"), Sum("nll2")]

    def rows(self, chunk) -> dict:
        nll = chunk.nll.double()
        return {"nll": nll, "nll2": nll * nll}

    def summarize(self, totals: dict, context: dict) -> dict | None:
        n = int(context["tokens"])
        return llama_ppl(float(totals["nll"]), float(totals["nll2"]), n) | {"scored_tokens": n} if n else None


class LlamaPerplexityPlugin(Plugin):
    name, keys, config_keys = "llama_perplexity", ("llama_perplexity",), ("protocol",)
    order = {"markdown": 5, "html": 5, "terminal": 5}

    def __init__(self, protocol):
        self.statistic = LlamaPerplexityStats()
        self.protocol = protocol

    @classmethod
    def build(cls, setup: Setup) -> "LlamaPerplexityPlugin | None":
        on = getattr(setup.eval, "protocol", "strided") == "llama-perplexity" and setup.protocol is not None
        return cls(setup.protocol) if on else None

    def block(self, scored: Scored) -> dict:
        out = scored.summary
        if out is not None:
            p = self.protocol
            out = {**out, "chunks": out["scored_tokens"] // p.chunk_targets, "n_ctx": p.window,
                   "bos_replaced": p.prefix_id is not None, "how": HOW}
        return {"llama_perplexity": out}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        rows = [r for r in rows if r.get("llama_perplexity")]
        if not rows:
            return ""
        t = {"headers": ["model", "dataset", "llama-perplexity"], "left": 3,
             "rows": [[r["model"], r["dataset"], ppl_line(r["llama_perplexity"])] for r in rows]}
        return "\n".join(["## llama.cpp perplexity", "", md_table(t), "", HOW + ".", ""])

    terminal = markdown

    @classmethod
    def html(cls, results: dict) -> list:
        rows = [r for r in results["results"] if r.get("llama_perplexity")]
        if not rows:
            return []
        t = {"headers": ["model", "dataset", "llama-perplexity"], "left": 3,
             "rows": [[r["model"], r["dataset"], ppl_line(r["llama_perplexity"])] for r in rows]}
        return [("llama.cpp perplexity", [{"table": t}, {"note": HOW + "."}])]
