"""The statistics a run reduces beyond NLL, their summaries, and the statistic blocks of a results row.

This is the one place that names the statistics (a registry of statistics that declare themselves will
replace it): :func:`statistics_for` picks them, :func:`summarize_statistics` summarises each from the
reduction, and :func:`stat_blocks` assembles the row's blocks (``temperature``, ``kl``, ``context_length``,
``compression``, ``memorisation``, ``groups``).

Example::

    >>> available_compressors(["gzip", "bz2"])
    ['gzip', 'bz2']
"""

from __future__ import annotations

import logging

from lm_eval_it.backends.hf_scorer import Scorer
from lm_eval_it.config.schema import RunConfig
from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.prepare import Prepared
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.engine.refine import refine_best_temperature
from lm_eval_it.stats.compression import available as compressors_here
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.insights import (
    compression_summary,
    group_summary,
    memorisation_summary,
)
from lm_eval_it.stats.kl.statistic import KLStats
from lm_eval_it.stats.memorisation.statistic import MinKProb
from lm_eval_it.stats.temperature.sweep import TemperatureStats

log = logging.getLogger(__name__)


def statistics_for(cfg: RunConfig, scorer: Scorer, prepared: Prepared) -> list:
    """The per-token statistics this run reduces, beyond NLL."""
    temps = cfg.eval.temperatures
    stats: list = [ContextStats(prepared.protocol.window, prepared.protocol.stride), MinKProb(cfg.eval.min_k)]
    if temps:
        stats.append(TemperatureStats(temps, scorer.vocab))
    if scorer.reference is not None:
        stats.append(KLStats(temps or [1.0]))
    return stats


def summarize_statistics(stats, red: Reduction, metrics: dict, cfg: RunConfig, ex: Executor, ctx: Context) -> dict:
    out = {}
    per_doc_rows = sorted(red.rows)
    for stat in stats:
        totals = red.of(stat)
        context = {"tokens": metrics["tokens"], "bytes": metrics["bytes"], "extremes": red.extremes_of(stat),
                   "per_document": {}}
        for key in red.layout.per_document:
            if key.startswith(stat.name + "."):
                context["per_document"][key.split(".", 1)[1]] = red.per_doc_arrays(key, per_doc_rows)
        if isinstance(stat, TemperatureStats) and cfg.eval.best_temperature == "exact":
            context["refined"] = refine_best_temperature(stat, totals, ex, ctx)
            context["refine_passes"] = -(-len(context["refined"]) // 3)  # up to three temperatures a pass
        summary = stat.summarize(totals, context)
        if summary is not None:
            out[stat.name] = summary
    return out


# ---- the statistic blocks of one results row: the one spot that assembles them ----
def stat_blocks(stats, red: Reduction, metrics: dict, per_doc: list[dict], prepared: Prepared, cfg: RunConfig,
                ex: Executor, ctx: Context, reference_name: str | None) -> dict:
    """The row's statistic blocks, by results.json key (``memorisation`` adds its signals to ``per_doc``)."""
    summaries = summarize_statistics(stats, red, metrics, cfg, ex, ctx)
    memorisation = memorisation_summary(per_doc, prepared.zlib_bits, prepared.heads, cfg.eval.min_k)
    return {
        "temperature": summaries.get("temperature"),
        "kl": summaries.get("kl"),
        "kl_reference": reference_name,
        "context_length": summaries.get("context"),
        "compression": compression_summary(prepared.compression, metrics["bits_per_byte"]),
        "memorisation": memorisation,
        "groups": group_summary(per_doc, prepared.groups),
    }


def available_compressors(wanted: list[str]) -> list[str]:
    """The configured compressors that this Python has (zstd needs the ``zstandard`` package)."""
    have = set(compressors_here())
    missing = [c for c in wanted if c not in have]
    if missing:
        warn_once(f"compression baselines: {', '.join(missing)} not available here (pip install zstandard); skipped")
    return [c for c in wanted if c in have]


def warn_once(message: str, _seen: set = set()) -> None:  # noqa: B006 - a process-wide memo on purpose
    if message not in _seen:
        _seen.add(message)
        log.warning(message)
