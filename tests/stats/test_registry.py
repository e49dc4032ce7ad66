"""The plug-in registry: every result key is written (None when its plug-in did not run), config decides
which run, and a run refuses a statistic its backend cannot serve."""

import numpy as np

from lm_eval_it.config.schema import EvalConfig
from lm_eval_it.stats import registry
from lm_eval_it.stats.base import Scored, Setup


def test_config_decides_which_plugins_run():
    off = registry.build(Setup(EvalConfig(temperatures=[], target_rank=False), vocab=50, window=16, stride=16))
    assert [p.name for p in off] == ["context", "compression", "min_k", "groups"]
    on = registry.build(Setup(EvalConfig(temperatures=[1.0], target_rank=True), vocab=50, window=16, stride=16, reference=True,
                              reference_name="ref"))
    assert [p.name for p in on] == ["temperature", "kl", "context", "compression", "min_k", "groups", "target_rank"]
    assert [s.name for s in registry.per_token(on)] == ["temperature", "kl", "context", "min_k", "target_rank"]


def test_blocks_hold_every_key_and_none_for_plugins_that_did_not_run():
    plugins = registry.build(Setup(EvalConfig(temperatures=[], target_rank=False), vocab=50, window=16, stride=16))
    per_doc = [{"index": 0, "nll": 2.0, "tokens": 2, "bytes": 4}]
    scored = Scored(None, {"bits_per_byte": 1.0}, per_doc, None, np.array([16.0]), ["text"], None)
    out = registry.blocks(plugins, {"context": {"bins": []}}, scored)
    assert list(out) == registry.keys()
    assert out["temperature"] is None and out["kl"] is None and out["kl_reference"] is None
    assert out["target_rank"] is None and out["compression"] is None and out["groups"] is None
    assert out["context_length"] == {"bins": []} and out["memorisation"]["k_percent"] == 20.0
    assert per_doc[0]["zlib_ratio"] == 2.0 / np.log(2) / 16.0  # memorisation adds its per-document field


def test_extra_passes_are_asked_only_by_a_plugin_that_declares_them():
    (temp,) = [p for p in registry.build(Setup(EvalConfig(temperatures=[1.0], best_temperature="exact"), vocab=50,
                                               window=16, stride=16)) if p.name == "temperature"]
    assert temp.extra_passes
    asked = []

    class Stop(Exception):
        pass

    def passes(stat, totals):
        asked.append(stat.name)
        raise Stop

    try:
        registry.summarize([temp], lambda s: {}, lambda s: {"tokens": 1, "bytes": 1}, passes)
    except Stop:
        pass
    assert asked == ["temperature"]


def test_sections_follow_each_outputs_order():
    rows = [{"model": "m", "dataset": "d", "metrics": {"bits_per_byte": 1.0, "docs": 1},
             "memorisation": {"flagged": []},
             "target_rank": {"tokens": 4, "documents": 1, "counts": {}, "intervals": {},
                             "shares": {"1": 0.5, "2-10": 0.5, "11-100": 0.0, "101-1000": 0.0, ">1000": 0.0}}}]
    md = [s.splitlines()[0] for _, s in registry.sections("markdown", rows)]
    assert md == ["## Memorisation signals", "## Target rank (GLTR)"]
