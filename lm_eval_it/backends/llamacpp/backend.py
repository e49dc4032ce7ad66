"""The llama.cpp backend: a GGUF file run by llama.cpp itself (llama-cpp-python), its kernels and its tokenizer.

Where the Hugging Face backend de-quantises a GGUF to float weights, this one runs the file as
``llama-perplexity`` does: quantised weights *and* llama.cpp's quantised activations, in the
memory the file needs. Full logits come back, so every statistic runs. llama-cpp-python is the
optional ``llamacpp`` extra; it is imported only when such a model loads.

Example::

    >>> from lm_eval_it.backends.base import Capability
    >>> LlamaCppBackend.kind, Capability.FULL_LOGITS in LlamaCppBackend.capabilities
    ('llama.cpp', True)
    >>> LlamaCppBackend.auto_batch_size(None, 512, n_batch=2048, vocab=49152)   # llama-perplexity's 4 a decode
    4
    >>> LlamaCppBackend.auto_batch_size(None, 512, n_batch=2048, vocab=262144)  # Gemma-3: its logits buffer
    1
    >>> repack_enabled("auto", {"avx512f", "amx_int8"}), repack_enabled("auto", {"avx2"}), repack_enabled("on", set())
    (False, True, True)
"""

from __future__ import annotations

import importlib
import os
import time
from pathlib import Path
from typing import ClassVar

import torch
from transformers import AutoTokenizer

from lm_eval_it.backends.base import Capability, ModelFacts
from lm_eval_it.backends.fingerprints import file_digest
from lm_eval_it.backends.hf.locate import locate
from lm_eval_it.backends.hf.tokenizer import HFTokenizer
from lm_eval_it.backends.llamacpp.scorer import LlamaScorer
from lm_eval_it.backends.llamacpp.tokenizer import LlamaTokenizer
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError

LOGIT_BYTES = 1 << 29  # llama.cpp's logits buffer (positions per decode × vocabulary × 4 B) stays within 512 MiB
INSTALL = "pip install 'lm_eval_it[llamacpp]' (pip builds llama-cpp-python from source)"


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (``flags`` on x86, ``Features`` on Arm; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def repack_enabled(option: str, flags: set[str]) -> bool:
    """Whether llama.cpp may use its extra weight buffers (``llama_cpp.repack``). ``auto`` turns them off on a
    CPU with AMX: llama.cpp then moves supported weights (Q4_0, Q4_1, Q8_0, K-quants) into AMX buffers, whose
    matrix multiply can segfault (llama.cpp issue 20824; seen here on a Sapphire Rapids VM), killing the run."""
    if option == "auto":
        return "amx_int8" not in flags
    return option == "on"


def runtime():
    """``lm_eval_it.backends.llamacpp.runtime``, which needs llama-cpp-python (the ``llamacpp`` extra)."""
    try:
        return importlib.import_module("lm_eval_it.backends.llamacpp.runtime")
    except ImportError as e:
        if "llama_cpp" not in str(e):
            raise
        raise UserError(f"backend llama.cpp needs llama-cpp-python, which is not installed: {INSTALL}") from None


def gguf_path(cfg: ModelConfig) -> Path:
    """The GGUF file a model entry names (``path:`` a .gguf, or a folder with ``gguf_file`` or one GGUF)."""
    folder, name = locate(cfg)
    if not name:
        raise UserError(f"model {cfg.name!r}: backend llama.cpp needs a GGUF file; {cfg.path!r} names none "
                        "(give a .gguf path, or gguf_file)")
    path = Path(name) if os.path.isabs(name) else Path(folder) / name
    if not path.is_file():
        raise UserError(f"model {cfg.name!r}: GGUF file {str(path)!r} does not exist")
    return path


def hf_tokenizer(path: Path) -> HFTokenizer:
    """The Hugging Face tokenizer transformers builds from the same GGUF (the tokenisation check)."""
    return HFTokenizer(AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name))


class LlamaCppBackend:
    """One GGUF model in llama.cpp, with its tokenizer and scorer."""

    kind: ClassVar[str] = "llama.cpp"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.FULL_LOGITS, Capability.TARGET_LOGPROBS})

    def __init__(self, cfg: ModelConfig, path: Path):
        rt = runtime()  # first: a missing extra is the error, not the file
        started = time.perf_counter()
        self.options = cfg.llama_cpp
        try:
            self.repack = repack_enabled(self.options.repack, cpu_flags())
            self.model = rt.LlamaModel(str(path), n_gpu_layers=self.options.n_gpu_layers, repack=self.repack)
        except OSError as e:
            raise UserError(f"model {cfg.name!r}: {e} (is it a valid GGUF file?)") from None
        self.tokenizer = LlamaTokenizer(self.model, check=hf_tokenizer(path) if self.options.check_tokenizer else None)
        self.path, self.name = path, cfg.name
        self.device = "cpu" if self.options.n_gpu_layers == 0 else f"llama.cpp:gpu({self.options.n_gpu_layers} layers)"
        self.dtype = f"gguf:{self.model.description().split()[-1]}"
        self.max_positions = self.model.n_ctx_train or None
        self.fingerprint = file_digest(path)
        self.tokenizer_fingerprint = self.tokenizer.info()["fingerprint"]
        self.load_seconds = time.perf_counter() - started
        self.source = {"gguf": str(path.resolve()), "sha256": self.fingerprint, "runtime": "llama.cpp",
                       "llama_cpp_python": rt.VERSION, "description": self.model.description(),
                       "repack": self.repack}

    @classmethod
    def load(cls, cfg: ModelConfig, device: str) -> "LlamaCppBackend":
        return cls(cfg, gguf_path(cfg))

    def scorer(self, reference=None):
        return LlamaScorer(self.model, self.options, threads=torch.get_num_threads(), reference=reference)

    def auto_batch_size(self, window: int, n_batch: int | None = None, vocab: int | None = None) -> int:
        """Windows per decode: ``n_batch // window`` (at least 1), as llama-perplexity's ``n_seq``, but no more
        than keep llama.cpp's logits buffer (a float per vocabulary entry per position) within
        :data:`LOGIT_BYTES`: with Gemma-3's 262,144 entries, one 512-token window a decode."""
        n_batch = n_batch if n_batch is not None else self.options.n_batch
        vocab = vocab if vocab is not None else self.model.n_vocab
        return max(1, min(n_batch, LOGIT_BYTES // (4 * vocab)) // window)

    def facts(self, scorer) -> ModelFacts:
        return ModelFacts(name=self.name, fingerprint=self.fingerprint, source=self.source, dtype=self.dtype,
                          device=self.device, max_positions=self.max_positions, load_seconds=self.load_seconds,
                          vocab_size=scorer.vocab, tokenizer=self.tokenizer.info(), split_head=None,
                          tokenizer_fingerprint=self.tokenizer_fingerprint, backend=self.kind)
