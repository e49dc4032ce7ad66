"""lm_eval_it: strided cross-entropy evaluation of causal language models.

The pipeline, one folder per step::

    config → data → backends → engine (prepare, execute; stats plug-ins) → report, driven by run/

Example::

    $ lm-eval-it run configs/quickstart.yaml

    >>> from lm_eval_it import evaluate   # the Python API (lm_eval_it.api)
    >>> list(__import__("inspect").signature(evaluate).parameters)[:3]
    ['model', 'tokenizer', 'texts']

Importing the package is light (no torch): ``evaluate`` and ``EvalResult`` are looked up in
:mod:`lm_eval_it.api` on first use (a module ``__getattr__``), so ``lm-eval-it --help``, which reads
``__version__``, does not load the scoring stack.
"""

import importlib

__version__ = "0.2.0"

__all__ = ["EvalResult", "evaluate", "__version__"]
_FROM_API = ("EvalResult", "evaluate")


def __getattr__(name: str):
    """``lm_eval_it.evaluate`` / ``lm_eval_it.EvalResult``: imported from :mod:`lm_eval_it.api` when first asked for."""
    if name in _FROM_API:
        value = getattr(importlib.import_module("lm_eval_it.api"), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'lm_eval_it' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_FROM_API])
