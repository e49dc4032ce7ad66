"""Per-backend options of a model entry: ``llama_cpp:`` (llama.cpp in process) and ``openai:`` (a served model).

A section is valid only with its backend (``models[].backend``); each has defaults, so
``backend: llama.cpp`` alone runs as ``llama-perplexity`` does (n_batch 2048, n_ubatch 512).

Example::

    >>> LlamaCppOptions().n_batch, OpenAIOptions(base_url="http://127.0.0.1:8000/v1").concurrency
    (2048, 4)
    >>> OpenAIOptions(base_url="http://h/v1/").base_url   # one trailing slash dropped
    'http://h/v1'
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lm_eval_it.config.strict import Strict

BACKEND_NAMES = ("hf", "llama.cpp", "openai")


class LlamaCppOptions(Strict):
    """``backend: llama.cpp``: the GGUF runs in llama.cpp (llama-cpp-python), full logits."""

    n_batch: int = Field(default=2048, ge=1, description="Tokens per llama_decode call (llama-perplexity's `-b`); "
                         "windows per decode = n_batch // window when `eval.batch_size` is auto (4 at window 512).")
    n_ubatch: int = Field(default=512, ge=1, description="Tokens per physical batch inside a decode (`-ub`).")
    n_gpu_layers: int = Field(default=0, description="Layers offloaded to a GPU build of llama.cpp (`-ngl`); "
                              "-1: all. 0 on a CPU build.")
    flash_attn: Literal["auto", "on", "off"] = Field(default="auto", description="llama.cpp's flash attention "
                                                     "(`-fa`); auto, as llama-perplexity: on where the backend has it.")
    check_tokenizer: bool = Field(default=True, description="Tokenise the data with the Hugging Face tokenizer of "
                                  "the same GGUF too and report the documents where the two differ.")


class OpenAIOptions(Strict):
    """``backend: openai``: an OpenAI-compatible completions endpoint (vLLM, llama-cpp-python's server, TGI).

    ``path:`` of the model entry names the *local* tokenizer (a GGUF, a folder or a hub id): ids are
    made here, sent as ids where the server takes them, and checked against the server's.
    """

    base_url: str = Field(min_length=1, description="The API root, e.g. `http://127.0.0.1:8000/v1`.")
    model: str | None = Field(default=None, description="The server's model name (the request's `model`); "
                              "default: the entry's name.")
    api_key_env: str | None = Field(default=None, description="The environment variable holding the API key "
                                    "(sent as a Bearer token); none: no key is sent.")
    timeout: float = Field(default=120.0, gt=0, description="Seconds per request before it is retried.")
    concurrency: int = Field(default=4, ge=1, description="Requests in flight at once.")
    max_retries: int = Field(default=5, ge=0, description="Retries of a request on 429, 5xx and timeouts, with "
                             "exponential back-off (0.5 s, 1 s, 2 s ...).")
    max_positions: int | None = Field(default=None, ge=2, description="The server's context length, if the "
                                      "local tokenizer's model does not say; windows are clamped to it.")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")
        return v[:-1] if v.endswith("/") else v
