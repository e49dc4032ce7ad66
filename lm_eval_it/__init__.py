"""lm_eval_it: strided cross-entropy evaluation of causal language models.

The pipeline, one module per step::

    config → models + tokens → data → prepare → execute (tokenstats plug-ins) → summarize → report

Example::

    $ lm-eval-it run configs/quickstart.yaml

    >>> from lm_eval_it import evaluate   # the Python API (lm_eval_it.api)
"""

__version__ = "0.2.0"


def evaluate(*args, **kwargs):
    """See :func:`lm_eval_it.api.evaluate` (imported lazily: torch loads only when used)."""
    from .api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
