"""The one list of statistics and dataset analyses that the runner and every report iterate over.

Adding a statistic = one file plus its tests. Target-rank buckets took: stats/target_rank.py (new,
195 lines), tests/stats/test_target_rank.py (new, 143 lines), 2 lines here, one field in config/eval.py,
and docs; no edit to the runner, the engine, the reports or the comparison:

1. ``lm_eval_it/stats/<name>.py``: a :class:`lm_eval_it.stats.base.Statistic` (``fields`` Sum/Count/
   Extreme, ``rows(chunk)`` on the device, pure ``summarize(totals, context)``, optional ``columns``
   for per-token output) and a :class:`lm_eval_it.stats.base.Plugin` (``keys``: its results.json
   key(s); ``config_keys``; ``needs``: Capability set; ``build(setup)`` → ``None`` when off; ``block``;
   report hooks ``markdown``/``terminal``/``html`` (tables as data, :mod:`lm_eval_it.stats.tables`)
   and ``compare(row, base)`` with its ``compare_columns``; ``order`` places its sections).
2. Import the Plugin class here and append it to :data:`PLUGINS` (two lines).
3. If it can be switched, one field on ``config.eval.EvalConfig`` with a ``Field(description=...)``.
4. Tests in ``tests/stats/test_<name>.py``: brute-force float64 reference of ``rows``, edges, and a
   run on the tiny model that reports its block and column.
Nothing else changes: the runner, summary.md, report.html, ``--details``, the comparison and the
per-token Parquet ask the registry. Extra scoring passes: set ``extra_passes`` and call
``context["extra_passes"](statistic, totals)`` in ``summarize`` (the runner wires it).

Example::

    >>> [p.name for p in PLUGINS]
    ['temperature', 'kl', 'context', 'compression', 'min_k', 'groups', 'target_rank', 'llama_perplexity']
    >>> sorted(keys())[:3]
    ['compression', 'context_length', 'groups']
"""

from __future__ import annotations

from collections.abc import Callable

from lm_eval_it.stats.analyses import CompressionPlugin, GroupsPlugin
from lm_eval_it.stats.base import Plugin, Scored, Setup, check_needs
from lm_eval_it.stats.context.plugin import ContextPlugin
from lm_eval_it.stats.kl.plugin import KLPlugin
from lm_eval_it.stats.llama_perplexity import LlamaPerplexityPlugin
from lm_eval_it.stats.memorisation.plugin import MemorisationPlugin
from lm_eval_it.stats.target_rank import TargetRankPlugin
from lm_eval_it.stats.temperature.plugin import TemperaturePlugin

PLUGINS: list[type[Plugin]] = [TemperaturePlugin, KLPlugin, ContextPlugin, CompressionPlugin, MemorisationPlugin,
                               GroupsPlugin, TargetRankPlugin, LlamaPerplexityPlugin]

__all__ = ["PLUGINS", "Plugin", "Scored", "Setup", "build", "check_needs", "keys", "per_token", "blocks",
           "summarize", "sections", "compare_columns", "compare_extras"]


def keys() -> list[str]:
    """Every result-row key a plug-in may write."""
    return [k for p in PLUGINS for k in p.keys]


def build(setup: Setup) -> list[Plugin]:
    """The plug-ins this model × dataset runs (in registry order)."""
    return [p for p in (cls.build(setup) for cls in PLUGINS) if p is not None]


def per_token(plugins: list[Plugin]) -> list:
    """Their per-token statistics, for the executor."""
    return [p.statistic for p in plugins if p.statistic is not None]


def summarize(plugins: list[Plugin], totals_of: Callable, context_of: Callable,
              extra_passes: Callable | None = None) -> dict[str, dict | None]:
    """Each plug-in's summary by name: ``totals_of(stat)`` and ``context_of(stat)`` come from the reduction;
    ``extra_passes(stat, totals)`` scores more passes for a plug-in that asks (``extra_passes = True``)."""
    out = {}
    for p in plugins:
        if p.statistic is None:
            out[p.name] = None
            continue
        context = context_of(p.statistic)
        if p.extra_passes:
            context["extra_passes"] = extra_passes
        out[p.name] = p.summarize(totals_of(p.statistic), context)
    return out


def blocks(plugins: list[Plugin], summaries: dict, scored: Scored) -> dict:
    """The result-row blocks: every registered key, ``None`` for a plug-in that did not run."""
    ran = {type(p): p for p in plugins}
    out = {}
    for cls in PLUGINS:
        p = ran.get(cls)
        if p is None:
            out.update({k: None for k in cls.keys})
        else:
            scored.summary = summaries.get(p.name)
            out.update(p.block(scored))
    return out


def sections(output: str, *args) -> list[tuple[int, object]]:
    """``(order, section)`` of every plug-in for one output: ``markdown``/``terminal`` (rows) or ``html`` (results)."""
    out = []
    for cls in sorted(PLUGINS, key=lambda c: c.order[output]):
        got = getattr(cls, output)(*args)
        if got:
            out.append((cls.order[output], got))
    return out


def compare_columns() -> list[tuple[str, str, str]]:
    """Every plug-in's comparison columns: (key, header, format) of the fields ``compare_extras`` adds."""
    return [c for p in PLUGINS for c in p.compare_columns]


def compare_extras(row: dict, base: dict) -> dict:
    """Every plug-in's fields for one model's comparison entry."""
    out = {}
    for cls in PLUGINS:
        out.update(cls.compare(row, base))
    return out
