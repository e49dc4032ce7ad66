"""llama-perplexity's "Final estimate: PPL = X +/- Y", computed as llama.cpp computes it (``protocol: llama-perplexity``).

Over all scored tokens of a dataset (the second halves of its chunks): ``mean = Σnll / N``,
``var = Σnll² / N − mean²``, ``SE = sqrt(var / (N − 1))``, ``PPL = exp(mean)`` and ``± SE · PPL``
(``tools/perplexity/perplexity.cpp``, ``perplexity()``). This is a per-*token* standard error,
as llama.cpp's; the harness's own intervals are over documents. Sums are float64; each token's
NLL is the engine's float32 ``−log softmax`` (llama.cpp sums ``expf`` terms in double: the two
agree to about 1e-7 relative).

Example::

    >>> ppl_estimate((6.0, 14.0, 3))      # NLLs 1, 2, 3: PPL e² ± 0.577·e²
    (7.38905609893065, 4.266073527774858)
    >>> ppl_estimate((2.0, 4.0, 1))[1]    # one token: no spread (llama.cpp says "Unexpected negative ...")
    nan
"""

from __future__ import annotations

import math

from lm_eval_it.backends.base import Capability
from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.base import Plugin, Scored, Setup, Statistic, Sum
from lm_eval_it.stats.tables import md_table

NAME = "llama-perplexity"
HOW = ("llama-perplexity's final estimate: exp(Σnll/N) ± SE·PPL with SE = sqrt((Σnll²/N − mean²)/(N − 1)) over "
       "the N scored tokens (the second half of each chunk); a per-token standard error, as llama.cpp's")


def ppl_estimate(sums: tuple[float, float, int]) -> tuple[float, float]:
    """``(PPL, ± SE)`` from ``(Σnll, Σnll², N)`` as llama-perplexity prints them (NaN where it prints none)."""
    total, total2, count = sums
    if count < 1:
        return math.nan, math.nan
    mean = total / count
    var = total2 / count - mean * mean
    ppl = math.exp(mean)
    if count < 2 or var <= 0:
        return ppl, math.nan
    return ppl, math.sqrt(var / (count - 1)) * ppl


class LlamaPerplexityStats(Statistic):
    """Σnll and Σnll² over scored tokens (float64)."""

    name = "llama_perplexity"

    def __init__(self, n_ctx: int):
        self.n_ctx = n_ctx

    def fields(self) -> list:
        return [Sum("nll"), Sum("nll2")]

    def rows(self, chunk) -> dict:
        nll = chunk.nll.double()
        return {"nll": nll, "nll2": nll * nll}

    def summarize(self, totals: dict, context: dict) -> dict | None:
        n = int(context["tokens"])
        if not n:
            return None
        total, total2 = float(totals["nll"]), float(totals["nll2"])
        ppl, se = ppl_estimate((total, total2, n))
        per_chunk = self.n_ctx - 1 - self.n_ctx // 2
        mean = total / n
        var = total2 / n - mean * mean
        return {"ppl": ppl, "ppl_se": se, "nll_mean": mean,
                "nll_se": math.sqrt(var / (n - 1)) if n > 1 and var > 0 else math.nan,
                "tokens": n, "chunks": n // per_chunk, "n_ctx": self.n_ctx, "how": HOW}


class LlamaPerplexityPlugin(Plugin):
    name, keys, config_keys = "llama_perplexity", ("llama_perplexity",), ("protocol",)
    needs = frozenset({Capability.TARGET_LOGPROBS})
    order = {"markdown": 5, "html": 5, "terminal": 5}

    def __init__(self, n_ctx: int):
        self.statistic = LlamaPerplexityStats(n_ctx)

    @classmethod
    def build(cls, setup: Setup) -> "LlamaPerplexityPlugin | None":
        return cls(setup.window) if getattr(setup.eval, "protocol", "strided") == NAME else None

    def block(self, scored: Scored) -> dict:
        return {"llama_perplexity": scored.summary}

    @classmethod
    def table(cls, rows: list[dict]) -> dict:
        out = [[r["model"], r["dataset"], f"{_f(lp['ppl'], '.4f')} ± {_f(lp['ppl_se'], '.5f')}", str(lp["chunks"]),
                str(lp["n_ctx"]), str(lp["tokens"])] for r in rows for lp in [r["llama_perplexity"]]]
        return {"headers": ["model", "dataset", "PPL ± SE", "chunks", "n_ctx", "tokens scored"], "rows": out, "left": 2}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        rows = [r for r in rows if r.get("llama_perplexity")]
        if not rows:
            return ""
        return "\n".join(["## llama-perplexity", "", md_table(cls.table(rows)), "", HOW + ".", ""])

    terminal = markdown

    @classmethod
    def html(cls, results: dict) -> list:
        rows = [r for r in results["results"] if r.get("llama_perplexity")]
        return [("llama-perplexity", [{"table": cls.table(rows)}, {"note": HOW + "."}])] if rows else []
