"""The openai backend: a model behind an OpenAI-compatible completions endpoint (vLLM, llama-cpp-python's server).

Only the targets' log-probs come back (``Capability.TARGET_LOGPROBS``), so a run whose statistics need full
logits (the temperature sweep, KL, calibration, target ranks) is refused before anything loads; bits per
byte, groups, the context curve, memorisation and comparisons run. The model entry's ``path`` names the
local tokenizer (a GGUF: llama.cpp's own when llama-cpp-python is installed, else Hugging Face's; a folder or
hub id: Hugging Face's); windows are cut with it and sent as ids (or their text), and the probe
(:mod:`lm_eval_it.backends.openai.probe`) checks that the server reads them the same way.

Example::

    >>> from lm_eval_it.backends.base import Capability
    >>> OpenAIBackend.kind, sorted(c.value for c in OpenAIBackend.capabilities)
    ('openai', ['target_logprobs'])
"""

from __future__ import annotations

import hashlib
import importlib
import os
import time
from typing import ClassVar

from transformers import AutoTokenizer

from lm_eval_it.backends.base import Capability, ModelFacts
from lm_eval_it.backends.hf.locate import locate
from lm_eval_it.backends.hf.tokenizer import HFTokenizer
from lm_eval_it.backends.llamacpp.backend import gguf_path, hf_tokenizer
from lm_eval_it.backends.llamacpp.tokenizer import LlamaTokenizer
from lm_eval_it.backends.openai.client import Client
from lm_eval_it.backends.openai.probe import probe
from lm_eval_it.backends.openai.scorer import OpenAIScorer
from lm_eval_it.config.backends import OpenAIOptions
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError


def api_key(options: OpenAIOptions) -> str | None:
    """The key from the environment variable ``openai.api_key_env`` names (a missing variable: one line)."""
    if not options.api_key_env:
        return None
    key = os.environ.get(options.api_key_env)
    if not key:
        raise UserError(f"openai.api_key_env: the environment variable {options.api_key_env!r} is not set")
    return key


def local_tokenizer(cfg: ModelConfig):
    """The tokenizer that ``path`` names: a GGUF's in llama.cpp (vocabulary only), else Hugging Face's."""
    folder, gguf = locate(cfg)
    if not gguf:
        try:
            return HFTokenizer(AutoTokenizer.from_pretrained(folder, revision=cfg.revision))
        except (OSError, ValueError) as e:
            raise UserError(f"model {cfg.name!r}: no tokenizer at {cfg.path!r} ({str(e).splitlines()[0]})") from None
    path = gguf_path(cfg)
    try:
        rt = importlib.import_module("lm_eval_it.backends.llamacpp.runtime")
    except ImportError:
        return hf_tokenizer(path)
    return LlamaTokenizer(rt.LlamaModel(str(path), vocab_only=True))


class OpenAIBackend:
    """One served model, the local tokenizer, and what the probe found."""

    kind: ClassVar[str] = "openai"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.TARGET_LOGPROBS})

    def __init__(self, cfg: ModelConfig):
        started = time.perf_counter()
        o = self.options = cfg.openai
        self.tokenizer = local_tokenizer(cfg)
        self.client = Client(o.base_url, api_key(o), o.timeout_s, o.max_retries, o.concurrency)
        self.server = probe(self.client, self.tokenizer, o)
        self.name = cfg.name
        self.device, self.dtype, self.max_positions = "remote", "served", None
        self.fingerprint = hashlib.sha256(f"{o.base_url}\0{self.server.model}".encode()).hexdigest()
        self.tokenizer_fingerprint = self.tokenizer.info()["fingerprint"]
        self.load_seconds = time.perf_counter() - started
        self.source = {"server": o.base_url, "model": self.server.model, "runtime": "openai",
                       "prompt": self.server.prompt, "drops_bos": self.server.drops_bos,
                       "needs_bos": self.server.needs_bos, "tokenizer_path": cfg.path}

    @classmethod
    def load(cls, cfg: ModelConfig, device: str) -> "OpenAIBackend":
        return cls(cfg)

    def scorer(self, reference=None) -> OpenAIScorer:
        if reference is not None:
            raise UserError("backend openai gives no logits, so it cannot be compared in lockstep (KL)")
        return OpenAIScorer(self.client, self.server, self.tokenizer, self.options.fresh_windows)

    def auto_batch_size(self, window: int) -> int:
        """Windows per batch: one request each, all in flight at once."""
        return self.options.concurrency

    def facts(self, scorer) -> ModelFacts:
        return ModelFacts(name=self.name, fingerprint=self.fingerprint, source=self.source, dtype=self.dtype,
                          device=self.device, max_positions=self.max_positions, load_seconds=self.load_seconds,
                          vocab_size=scorer.vocab, tokenizer=self.tokenizer.info(), split_head=None,
                          tokenizer_fingerprint=self.tokenizer_fingerprint, backend=self.kind)
