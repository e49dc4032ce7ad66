"""Per-backend options of a model entry: ``llama_cpp:`` (llama.cpp in process), ``openai:`` (a served model).

A section is valid only with its backend (``models[].backend``); each has defaults, so
``backend: llama.cpp`` alone runs as ``llama-perplexity`` does (n_batch 2048, n_ubatch 512).

Example::

    >>> LlamaCppOptions().n_batch, LlamaCppOptions().flash_attn
    (2048, 'auto')
    >>> o = OpenAIOptions(base_url="http://127.0.0.1:8000/v1/")
    >>> o.base_url, o.prompt, o.max_retries
    ('http://127.0.0.1:8000/v1', 'auto', 5)
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

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


class OpenAIOptions(Strict):
    """``backend: openai``: an OpenAI-compatible completions endpoint (vLLM, llama-cpp-python's server) gives the
    targets' log-probs of echoed prompts; the model entry's ``path`` names the local tokenizer."""

    base_url: str = Field(min_length=1, description="The endpoint's base, e.g. `http://127.0.0.1:8000/v1` "
                          "(requests go to `<base_url>/completions`).")
    model: str | None = Field(default=None, description="The served model's name (the request's `model`); "
                              "default: the first one `<base_url>/models` lists.")
    api_key_env: str | None = Field(default=None, description="The NAME of an environment variable holding the API "
                                    "key (sent as `Authorization: Bearer …`); unset: no key.")
    timeout_s: float = Field(default=120.0, gt=0, description="Seconds one request may take before it is retried.")
    concurrency: int = Field(default=4, ge=1, description="Requests in flight at once (one per window); windows per "
                             "batch when `eval.batch_size` is auto.")
    max_retries: int = Field(default=5, ge=0, description="Retries of a request after a 429, a 5xx, a timeout or a "
                             "dropped connection, with exponential back-off and jitter (honouring `Retry-After`).")
    prompt: Literal["auto", "ids", "text"] = Field(default="auto", description="Send token ids (nothing is "
                                                   "re-tokenised; vLLM), or the windows' text (llama-cpp-python's "
                                                   "server; the echoed tokens are checked against the local ones); "
                                                   "auto: ids, else text when the server refuses ids.")
    fresh_windows: bool = Field(default=False, description="Send a one-token request before each window, so that a "
                                "server that reuses the KV cache of the previous prompt's common prefix "
                                "(llama-cpp-python's: a different sum, up to 0.25 nats a token on SmolLM2) evaluates "
                                "every window afresh, as the in-process backends do. Needs concurrency 1.")

    @model_validator(mode="after")
    def _fresh_needs_one(self) -> "OpenAIOptions":
        if self.fresh_windows and self.concurrency != 1:
            raise ValueError(f"openai.fresh_windows needs concurrency 1 (got {self.concurrency}): another window's "
                             "request must not come between the one-token request and its window")
        return self

    @field_validator("base_url")
    @classmethod
    def _strip(cls, v: str) -> str:
        return v.rstrip("/")
