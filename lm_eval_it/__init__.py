"""lm_eval_it: strided cross-entropy evaluation of causal language models.

The pipeline, one module per step::

    config → models + tokens → data → prepare → execute (tokenstats plug-ins) → summarize → report

Example::

    $ lm-eval-it run configs/quickstart.yaml

    >>> from lm_eval_it import evaluate   # the Python API (lm_eval_it.api)
    >>> list(__import__("inspect").signature(evaluate).parameters)[:3]
    ['model', 'tokenizer', 'texts']

Importing the package is light: torch and transformers load when ``evaluate`` runs.
"""

__version__ = "0.2.0"

from lm_eval_it.api import EvalResult, evaluate  # noqa: E402 - after __version__, which the CLI reads

__all__ = ["EvalResult", "evaluate", "__version__"]
