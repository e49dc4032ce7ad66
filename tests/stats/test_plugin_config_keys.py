"""Every registered plug-in's ``config_keys`` names real ``eval`` fields (nothing else reads ``config_keys``, so a
typo or a renamed field would otherwise go unseen), and its ``needs`` are Capability values."""

from lm_eval_it.backends.base import Capability
from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.stats.registry import PLUGINS


def test_each_plugins_config_keys_are_eval_fields():
    unknown = {p.name: k for p in PLUGINS for k in p.config_keys if k not in EvalConfig.model_fields}
    assert unknown == {}
    assert {p.name: p.config_keys for p in PLUGINS}["target_rank"] == ("target_rank",)


def test_each_plugins_needs_are_capabilities():
    assert all(isinstance(c, Capability) for p in PLUGINS for c in p.needs)
