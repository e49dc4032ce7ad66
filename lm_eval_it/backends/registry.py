"""The backends by config name (``models[].backend``), and loading a configured model with its backend.

A backend's class says what it can give (``capabilities``) before anything loads, so a run
whose statistics need more is refused first (:func:`refuse_unmet`).

Adding a backend (e.g. ``llamacpp``): a package ``backends/<name>/`` with a class that has
``kind = "<name>"``, ``capabilities`` (``FULL_LOGITS`` if it gives (rows × vocab) logits, else
only ``TARGET_LOGPROBS``), a ``load(cfg, device)`` classmethod, and the attributes and methods of
:class:`~lm_eval_it.backends.base.Backend`: a ``tokenizer`` that is a
:class:`~lm_eval_it.backends.base.Tokenizer` (``encode_texts``, ``byte_lengths``, ``decode``,
``get_vocab``, ``info``, BOS/EOS), ``scorer()`` giving a
:class:`~lm_eval_it.backends.base.WindowScorer` (logits-only backends can subclass
:class:`~lm_eval_it.backends.logits.TargetLogprobScorer`), ``auto_batch_size`` and ``facts``.
Register it in ``BACKENDS`` below and add its name to ``ModelConfig.backend``; the engine is unchanged.

Example::

    >>> backend_class("hf").kind, sorted(c.value for c in backend_class("hf").capabilities)
    ('hf', ['full_logits', 'target_logprobs'])
    >>> refuse_unmet(ModelConfig(path="org/name"), {"kl": [Capability.FULL_LOGITS]})  # hf has it: nothing to say
"""

from __future__ import annotations

from typing import Iterable, Mapping

from lm_eval_it.backends.base import Backend, Capability, unmet
from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.backends.llamacpp.backend import LlamaCppBackend
from lm_eval_it.backends.openai.backend import OpenAIBackend
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError

BACKENDS: dict[str, type] = {HFBackend.kind: HFBackend, LlamaCppBackend.kind: LlamaCppBackend,
                             OpenAIBackend.kind: OpenAIBackend}


def backend_class(name: str) -> type:
    """The backend class for a config's ``backend:`` value."""
    if name not in BACKENDS:
        raise UserError(f"models[].backend: got {name!r}; expected one of {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name]


def refuse_unmet(cfg: ModelConfig, needs: Mapping[str, Iterable[Capability]]) -> None:
    """Refuse, before it loads, a model whose backend lacks what the statistics ``needs`` (one line)."""
    missing = unmet(needs, backend_class(cfg.backend).capabilities, cfg.backend)
    if missing:
        raise UserError(f"model {cfg.name!r}: {missing}")


def load_model(cfg: ModelConfig, device: str) -> Backend:
    """Load one configured model with its backend onto ``device``."""
    return backend_class(cfg.backend).load(cfg, device)
