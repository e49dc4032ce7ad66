"""The temperature sweep as a plug-in: on with ``eval.temperatures``; results block ``temperature``.

``best_temperature: exact`` asks for extra scoring passes: the plug-in sets ``extra_passes`` and its
summary calls ``context["extra_passes"](statistic, totals)``, which the runner wires to
:func:`lm_eval_it.engine.refine.refine_best_temperature` (stats never import the engine). Its report:
one table per swept model × dataset (entropy and NLL per T), the best T and calibration.

Example::

    >>> sw = {"per_temperature": [{"temperature": 1.0, "entropy_bits_per_token": 2.0, "nll_bits_per_token": 2.5,
    ...       "entropy_bits_per_byte": 1.0, "nll_bits_per_byte": 1.25, "mean_top1_prob": 0.3}]}
    >>> sweep_rows(sw)
    [['1', '2.0000', '2.5000', '1.0000', '1.2500', '0.3000']]
"""

from __future__ import annotations

from lm_eval_it.backends.base import Capability
from lm_eval_it.numfmt import interval
from lm_eval_it.numfmt import num as _num
from lm_eval_it.stats.base import Plugin, Setup
from lm_eval_it.stats.temperature.best import headline as best_headline
from lm_eval_it.stats.temperature.sweep import TemperatureStats

SWEEP_HEADERS = ["T", "entropy bits/token", "NLL bits/token", "entropy bits/byte", "NLL bits/byte", "mean top-1 p"]
CALIBRATION_NOTE = ('Verdict from top-1 accuracy against mean top-1 confidence: 95% intervals over documents of accuracy − confidence and of the equal-width ECE; "calibrated" only when both lie within 0.02. ECE over 15 equal-width and 15 equal-mass bins of top-1 confidence. Entropy − NLL is 0 at the NLL-optimal T for any model, so it is shown for what it is, not as a calibration test.')


def sweep_markdown(rows: list[dict]) -> str:
    """One table per swept model × dataset: entropy and NLL per T, best T, calibration."""
    out = []
    for r in rows:
        sw = r.get("temperature")
        if not sw:
            continue
        b, c1 = sw["best"], sw["calibration_T1"]
        out += [f"#### Temperature sweep · {r['model']} · {r['dataset']}", "",
                "| T | entropy bits/token | NLL bits/token | entropy bits/byte | NLL bits/byte | mean top-1 p |",
                "|--:|--:|--:|--:|--:|--:|"]
        out += [f"| {p['temperature']:g} | {p['entropy_bits_per_token']:.4f} | {p['nll_bits_per_token']:.4f} | "
                f"{p['entropy_bits_per_byte']:.4f} | {p['nll_bits_per_byte']:.4f} | {p['mean_top1_prob']:.4f} |"
                for p in sw["per_temperature"]]
        out += ["", best_headline(b)]
        near = b.get("calibration_at_temperature")
        pairs = [("T = 1", c1)] + ([] if near == 1.0 and c1 else
                                   [(f"T = {near:g} (swept T nearest the best)" if near else "best T", b["calibration"])])
        for name, cal in pairs:
            if cal:
                ece_iv = _iv(cal.get("ece_equal_width_interval"))
                out.append(f"Calibration at {name}: {cal['direction']} — top-1 accuracy {cal['top1_accuracy']:.4f} "
                           f"vs mean confidence {cal['mean_top1_prob']:.4f} (accuracy − confidence "
                           f"{_signed_iv(cal)}); ECE {cal['ece_equal_width']:.4f} {ece_iv}(15 equal-width bins), "
                           f"{cal['ece_equal_mass']:.4f} (equal-mass). Entropy − NLL "
                           f"{cal['entropy_minus_nll_bits']:+.4f} bits/token (0 at the NLL-optimal T for any model: "
                           "not a calibration test).")
        out.append("")
    return "\n".join(out)


def sweep_rows(sw: dict) -> list[list[str]]:
    return [[format(p["temperature"], "g")] + [_num(p[k]) for k in ("entropy_bits_per_token", "nll_bits_per_token",
            "entropy_bits_per_byte", "nll_bits_per_byte", "mean_top1_prob")] for p in sw["per_temperature"]]


def calibration_rows(sw: dict) -> dict:
    rows = []
    near = sw["best"].get("calibration_at_temperature")
    pairs = [("T = 1", sw["calibration_T1"])]
    if not (near == 1.0 and sw["calibration_T1"]):  # the same T twice would be the same row twice
        pairs.append((f"T = {near:g} (swept T nearest the best)" if near else "best T", sw["best"].get("calibration")))
    for name, cal in pairs:
        if cal:
            ece_cell = f"{_num(cal['ece_equal_width'])} {_iv(cal.get('ece_equal_width_interval'))}".strip()
            rows.append([name, {"value": cal["direction"], "wrap": True}, _num(cal["top1_accuracy"]),
                         _num(cal["mean_top1_prob"]), _signed_iv(cal), ece_cell, _num(cal["ece_equal_mass"]),
                         _num(cal["entropy_minus_nll_bits"], "+.4f")])
    return {"headers": ["", "verdict", "top-1 accuracy", "mean confidence", "accuracy − confidence [95%]",
                        "ECE (equal width) [spread of the estimate, 95%]", "ECE (equal mass)", "entropy − NLL bits/token"],
            "rows": rows, "left": 2, "text": [1]}


def _iv(iv, spec: str = ".4f") -> str:
    return interval(iv, spec) + " " if iv else ""


def _signed_iv(cal: dict) -> str:
    """Accuracy − confidence with its 95% interval over documents (none with fewer than 2 documents)."""
    gap = cal.get("accuracy_minus_confidence")
    return f"{_num(gap, '+.4f')} {_iv(cal.get('accuracy_minus_confidence_interval'), '+.4f')}".strip()


class TemperaturePlugin(Plugin):
    name, keys, config_keys = "temperature", ("temperature",), ("temperatures", "best_temperature",
                                                                    "sweep_kernel")
    needs = frozenset({Capability.FULL_LOGITS})  # softmax of the (rows × vocab) logits at each T
    order = {"markdown": 60, "html": 60, "terminal": 60}

    def __init__(self, temperatures: list[float], vocab: int, exact: bool = False, kernel: str = "auto"):
        self.statistic = TemperatureStats(temperatures, vocab, kernel=kernel)
        self.extra_passes = exact

    @classmethod
    def build(cls, setup: Setup) -> "TemperaturePlugin | None":
        temps = setup.eval.temperatures
        return (cls(temps, setup.vocab, setup.eval.best_temperature == "exact", setup.eval.sweep_kernel)
                if temps else None)

    def summarize(self, totals: dict, context: dict) -> dict | None:
        if self.extra_passes:
            context["refined"] = context["extra_passes"](self.statistic, totals)
            context["refine_passes"] = -(-len(context["refined"]) // 3)  # up to three temperatures a pass
        return self.statistic.summarize(totals, context)

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        return sweep_markdown(rows)

    terminal = markdown

    @classmethod
    def html(cls, results: dict) -> list:
        out = []
        for r in results["results"]:
            sw = r.get("temperature")
            if not sw:
                continue
            blocks = [{"table": {"headers": SWEEP_HEADERS, "rows": sweep_rows(sw)}}, {"p": best_headline(sw["best"])}]
            cal = calibration_rows(sw)
            if cal["rows"]:
                blocks += [{"h3": "Calibration"}, {"table": cal}, {"note": CALIBRATION_NOTE}]
            out.append((f"Temperature sweep · {r['model']} · {r['dataset']}", blocks))
        return out
