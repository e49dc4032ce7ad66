"""lm_eval_it: strided cross-entropy evaluation of causal language models.

The pipeline, one module per step::

    config → models + tokens → data → windows → scoring → metrics → report

Example::

    $ lm-eval-it run configs/quickstart.yaml
"""

__version__ = "0.1.0"
