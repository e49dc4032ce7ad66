"""Min-K% prob per document (Shi et al. 2023), from the document's token NLLs as it completes.

The per-token values exist only while the document is being scored; what is
kept is one number per document: the mean log-probability of its k% least
likely tokens (:func:`lm_eval_it.stats.memorisation.signals.min_k_percent`).

Example::

    >>> import numpy as np
    >>> MinKProb(50).finish_document(np.array([1.0, 2.0, 3.0, 4.0], np.float32))
    {'min_k_logprob': -3.5}
"""

from __future__ import annotations

from lm_eval_it.stats.base import Statistic
from lm_eval_it.stats.memorisation.signals import min_k_percent


class MinKProb(Statistic):
    name = "min_k"

    def __init__(self, k: float = 20.0):
        self.k = k

    def finish_document(self, token_nll) -> dict:
        return {"min_k_logprob": float(min_k_percent(token_nll, self.k))} if len(token_nll) else {}
