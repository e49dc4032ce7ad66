"""The statistics a run reduces beyond NLL, their summaries, and the statistic blocks of a results row.

The statistics declare themselves (:mod:`lm_eval_it.stats.registry`); this module only wires the registry to
the run: :func:`refuse_unmet_needs` refuses, before anything loads, a model whose backend lacks what its statistics
need; :func:`plugins_for` builds the plug-ins of one model × dataset (refusing one whose need the
backend cannot meet), :func:`stat_blocks` summarises each from the reduction and assembles the row's blocks,
with the extra scoring passes a plug-in may ask for (``best_temperature: exact``).

Example::

    >>> available_compressors(["gzip", "bz2"])
    ['gzip', 'bz2']
"""

from __future__ import annotations

import logging

from lm_eval_it.backends.registry import refuse_unmet
from lm_eval_it.config.schema import RunConfig
from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.prepare import Prepared
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.engine.refine import refine_best_temperature
from lm_eval_it.stats import registry
from lm_eval_it.stats.base import Plugin, Scored, Setup, check_needs
from lm_eval_it.stats.compression import available as compressors_here

log = logging.getLogger(__name__)


def plugins_for(cfg: RunConfig, backend, scorer, prepared: Prepared, reference_name: str | None) -> list[Plugin]:
    """The plug-ins this model × dataset runs; one whose need the backend cannot meet is refused here (a live
    model in ``evaluate()`` reaches this check without passing :func:`refuse_unmet_needs` first)."""
    proto = prepared.protocol
    plugins = registry.build(Setup(cfg.eval, scorer.vocab, proto.window, proto.stride,
                                   scorer.reference is not None, reference_name, proto))
    check_needs(plugins, backend.kind, type(backend).capabilities)
    return plugins


def refuse_unmet_needs(cfg: RunConfig) -> None:
    """Before any model loads: refuse a model whose backend cannot give what its statistics need (one line)."""
    for m in cfg.models:
        window = cfg.eval.window
        setup = Setup(cfg.eval, 1, window, cfg.eval.stride or window, m.compare_to is not None, m.compare_to)
        needs = {p.name: p.needs for p in registry.build(setup)}
        refuse_unmet(m, needs)
        if m.compare_to is not None:  # the reference gives the same full logits as the candidate: KL needs both
            reference = next((r for r in cfg.models if r.name == m.compare_to), None)
            if reference is not None:
                refuse_unmet(reference, {k: v for k, v in needs.items() if k.startswith("kl")})


def stat_context(red: Reduction, metrics: dict, stat) -> dict:
    """What a statistic's summarize reads beside its totals: sizes, extremes, its per-document fields."""
    docs = sorted(red.rows)
    per_doc = {key.split(".", 1)[1]: red.per_doc_arrays(key, docs) for key in red.layout.per_document
               if key.startswith(stat.name + ".")}
    return {"tokens": metrics["tokens"], "bytes": metrics["bytes"], "extremes": red.extremes_of(stat),
            "per_document": per_doc, "documents": docs}


# ---- the statistic blocks of one results row: the one spot that assembles them ----
def stat_blocks(plugins: list[Plugin], red: Reduction, metrics: dict, per_doc: list[dict], prepared: Prepared,
                ex: Executor, ctx: Context) -> dict:
    """The row's statistic blocks, by results.json key (a plug-in may add its fields to ``per_doc``)."""
    summaries = registry.summarize(plugins, red.of, lambda stat: stat_context(red, metrics, stat),
                                   lambda stat, totals: refine_best_temperature(stat, totals, ex, ctx))
    scored = Scored(None, metrics, per_doc, prepared.compression, prepared.zlib_bits, prepared.heads,
                    prepared.groups)
    return registry.blocks(plugins, summaries, scored)


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
