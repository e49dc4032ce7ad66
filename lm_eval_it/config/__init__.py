"""Config: the typed run description (``schema``, its ``eval`` section in ``eval``), how it is read (``load``), the CLI's
shorthands, named datasets.

Example::

    >>> from lm_eval_it.config import parse_config
    >>> cfg = parse_config({"models": [{"path": "m"}], "datasets": [{"builtin": "wikitext2"}]})
    >>> cfg.models[0].backend, cfg.datasets[0].name
    ('hf', 'wikitext2')
"""

from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.config.load import (
           apply_override,
           finish_config,
           load_config,
           load_raw,
           parse_config,
           read_raw,
)
from lm_eval_it.config.schema import DatasetConfig, ModelConfig, OutputConfig, RunConfig

__all__ = ["DatasetConfig", "EvalConfig", "ModelConfig", "OutputConfig", "RunConfig", "apply_override",
           "finish_config", "load_config", "load_raw", "parse_config", "read_raw"]
