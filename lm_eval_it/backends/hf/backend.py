"""The Hugging Face backend: a ``transformers`` causal LM in PyTorch, full logits.

It loads through :func:`~lm_eval_it.backends.hf.load.load_model` (hub ids, folders, GGUF
files de-quantised once) or wraps a live model (:meth:`HFBackend.from_live`, the Python
API), and scores with :class:`~lm_eval_it.backends.hf.scorer.Scorer`.

Example::

    >>> from lm_eval_it.backends.base import Capability
    >>> HFBackend.kind, Capability.FULL_LOGITS in HFBackend.capabilities   # known before loading
    ('hf', True)
"""

from __future__ import annotations

from typing import ClassVar

from lm_eval_it.backends.base import Capability, ModelFacts
from lm_eval_it.backends.hf.load import LoadedModel, load_model, max_positions
from lm_eval_it.backends.hf.scorer import Scorer, auto_batch_size
from lm_eval_it.backends.hf.tokenizer import HFTokenizer
from lm_eval_it.config.schema import ModelConfig


class HFBackend:
    """One loaded ``transformers`` model (``loaded.model``) with its tokenizer facts and scorer."""

    kind: ClassVar[str] = "hf"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.FULL_LOGITS, Capability.TARGET_LOGPROBS})

    def __init__(self, loaded: LoadedModel, compile: bool = False, run_device: str | None = None):
        self.loaded = loaded
        self.run_device = run_device or loaded.device  # inputs go here (a device_map's model: the run's device)
        self.model = loaded.model
        self.tokenizer = HFTokenizer(loaded.tokenizer)
        self.compile = compile
        self.name, self.device, self.dtype = loaded.name, loaded.device, loaded.dtype
        self.max_positions = loaded.max_positions
        self.fingerprint, self.tokenizer_fingerprint = loaded.fingerprint, loaded.tokenizer_fingerprint

    @classmethod
    def load(cls, cfg: ModelConfig, device: str) -> "HFBackend":
        return cls(load_model(cfg, device), compile=cfg.compile, run_device=device)

    @classmethod
    def from_live(cls, model, tokenizer, name: str, device: str) -> "HFBackend":
        """A model already in memory (the caller keeps it in eval mode while it is scored)."""
        return cls(LoadedModel(name=name, model=model, tokenizer=tokenizer, device=device,
                               dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
                               fingerprint=f"in-memory:{id(model)}", source={"in_memory": True},
                               max_positions=max_positions(model.config), load_seconds=0.0))

    def scorer(self, reference: Scorer | None = None) -> Scorer:
        return Scorer(self.model, self.run_device, reference=reference, compile=self.compile)

    def auto_batch_size(self, window: int) -> int:
        return auto_batch_size(self.device, window, self.model)

    def facts(self, scorer: Scorer) -> ModelFacts:
        lm = self.loaded
        return ModelFacts(name=lm.name, fingerprint=lm.fingerprint, source=lm.source, dtype=lm.dtype,
                          device=lm.device, max_positions=lm.max_positions, load_seconds=lm.load_seconds,
                          vocab_size=scorer.vocab, tokenizer=self.tokenizer.info(), split_head=scorer.split_head,
                          tokenizer_fingerprint=getattr(lm, "tokenizer_fingerprint", None), backend=self.kind)

    @property
    def source(self) -> dict:
        return self.loaded.source
