"""KL against a reference model as a plug-in: on when the model has ``compare_to``; blocks ``kl`` (+ ``kl_reference``)
and ``kl_llama`` (every statistic ``llama-perplexity --kl-divergence`` prints: :mod:`lm_eval_it.stats.kl.llama`).

Its statistic (:class:`lm_eval_it.stats.kl.statistic.KLStats`) reads the reference's logits of
the same chunk; its report is one table per model × dataset (:func:`lm_eval_it.stats.kl.divergence.kl_markdown`;
report.html: :func:`kl_table`), plus KL per T when a sweep ran, and llama-perplexity's three blocks
(:func:`lm_eval_it.stats.kl.llama.llama_markdown`) in summary.md.

Example::

    >>> KLPlugin.build(Setup(eval=None, vocab=8, window=4, stride=4)) is None      # no reference: off
    True
"""

from __future__ import annotations

from lm_eval_it.backends.base import Capability
from lm_eval_it.numfmt import num as _num
from lm_eval_it.stats.base import Plugin, Scored, Setup
from lm_eval_it.stats.kl.divergence import kl_markdown
from lm_eval_it.stats.kl.llama import llama_markdown
from lm_eval_it.stats.kl.statistic import KLStats


def kl_table(kl: dict) -> dict:
    t1 = next(p for p in kl["per_temperature"] if p["temperature"] == 1.0)
    pm = lambda v, se, f=".6f": f"{_num(v, f)} ± {_num(se, f)}"  # noqa: E731
    rows = [["mean KL(ref ‖ cand), nats", pm(t1["kl_ref_cand_nats"], t1["kl_ref_cand_se"])],
            ["mean KL(cand ‖ ref), nats", pm(t1["kl_cand_ref_nats"], t1["kl_cand_ref_se"])],
            *[[f"KL(ref ‖ cand) {q}", _num(v, ".6f")] for q, v in kl["kl_ref_cand_quantiles_nats"].items()],
            ["same top-1", f"{_num(100 * kl['same_top1'], '.3f')}% ± {_num(100 * kl['same_top1_se'], '.3f')}%"],
            ["RMS Δp", f"{_num(100 * kl['delta_p_rms'], '.3f')}%"],
            ["mean Δp", f"{_num(100 * kl['delta_p_mean'], '+.4f')}%"],
            ["PPL(cand) / PPL(ref)", pm(kl["ppl_ratio"], kl["ppl_ratio_se"])],
            ["PPL(cand) − PPL(ref)", f"{_num(kl['ppl_diff'], '+.5f')} ± {_num(kl['ppl_diff_se'], '.5f')}"]]
    return {"headers": ["statistic", "value"], "rows": rows}


def kl_temperature_rows(kl: dict) -> list[list[str]]:
    return [[format(p["temperature"], "g"), _num(p["kl_ref_cand_nats"], ".6f"), _num(p["kl_cand_ref_nats"], ".6f")]
            for p in kl["per_temperature"]]


class KLPlugin(Plugin):
    name, keys, config_keys = "kl", ("kl", "kl_reference", "kl_llama"), ("temperatures",)
    needs = frozenset({Capability.FULL_LOGITS})  # both models' (rows × vocab) logits
    order = {"markdown": 5, "html": 70, "terminal": 70}

    def __init__(self, temperatures: list[float], reference: str):
        self.statistic = KLStats(temperatures or [1.0])
        self.reference = reference

    @classmethod
    def build(cls, setup: Setup) -> "KLPlugin | None":
        return cls(setup.eval.temperatures, setup.reference_name) if setup.reference else None

    def block(self, scored: Scored) -> dict:
        s = scored.summary
        kl = {k: v for k, v in s.items() if k != "llama"} if s is not None else None
        return {"kl": kl, "kl_reference": self.reference, "kl_llama": s.get("llama") if s is not None else None}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        return "\n".join(kl_markdown(r) + ("\n" + llama_markdown(r) if r.get("kl_llama") else "")
                         for r in rows if r.get("kl"))

    @classmethod
    def terminal(cls, rows: list[dict]) -> str:
        return "\n".join(kl_markdown(r) for r in rows if r.get("kl"))

    @classmethod
    def html(cls, results: dict) -> list:
        out = []
        for r in results["results"]:
            kl = r.get("kl")
            if not kl:
                continue
            blocks = [{"meta": f"{kl['tokens']} tokens; ± one standard error."}, {"table": kl_table(kl)}]
            if len(kl["per_temperature"]) > 1:
                blocks.append({"table": {"headers": ["T", "KL(ref ‖ cand) nats", "KL(cand ‖ ref) nats"],
                                         "rows": kl_temperature_rows(kl)}})
            out.append((f"KL · {r['model']} against {r['kl_reference']} · {r['dataset']}", blocks))
        return out
