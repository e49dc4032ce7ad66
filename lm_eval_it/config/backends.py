"""Per-backend options of a model entry: ``llama_cpp:`` (llama.cpp in process).

A section is valid only with its backend (``models[].backend``); each has defaults, so
``backend: llama.cpp`` alone runs as ``llama-perplexity`` does (n_batch 2048, n_ubatch 512).

Example::

    >>> LlamaCppOptions().n_batch, LlamaCppOptions().flash_attn
    (2048, 'auto')
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lm_eval_it.config.strict import Strict

class LlamaCppOptions(Strict):
    """``backend: llama.cpp``: the GGUF runs in llama.cpp (llama-cpp-python), full logits."""

    n_batch: int = Field(default=2048, ge=1, description="Tokens per llama_decode call (llama-perplexity's `-b`); "
                         "windows per decode = n_batch // window when `eval.batch_size` is auto (4 at window 512).")
    n_ubatch: int = Field(default=512, ge=1, description="Tokens per physical batch inside a decode (`-ub`).")
    n_gpu_layers: int = Field(default=0, description="Layers offloaded to a GPU build of llama.cpp (`-ngl`); "
                              "-1: all. 0 on a CPU build.")
    flash_attn: Literal["auto", "on", "off"] = Field(default="auto", description="llama.cpp's flash attention "
                                                     "(`-fa`); auto, as llama-perplexity: on where the backend has it.")
    repack: Literal["auto", "on", "off"] = Field(default="auto", description="llama.cpp's extra weight buffers "
                                                 "(`--repack`/`--no-repack`: repacked and AMX matrix kernels). auto: "
                                                 "off on a CPU with AMX, where llama.cpp's AMX kernels can crash the "
                                                 "process (llama.cpp issue 20824), on elsewhere.")
    check_tokenizer: bool = Field(default=True, description="Tokenise the data with the Hugging Face tokenizer of "
                                  "the same GGUF too and report the documents where the two differ.")
