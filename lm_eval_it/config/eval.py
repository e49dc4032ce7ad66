"""The ``eval`` section of a config: how windows are cut and scored (window, stride, prefix, batch, sweep).

Every value is checked when the config is read: a stride above the window, a temperature
that is not > 0, a device that is not ``auto``/``cpu``/``mps``/``cuda[:N]`` is an error.
A sweep always contains T = 1.

Example::

    >>> ev = EvalConfig(window=512, temperatures=[2.0, 0.5])
    >>> ev.stride, ev.temperatures, ev.batch_size
    (512, [0.5, 1.0, 2.0], 'auto')
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lm_eval_it.config.strict import Strict


class EvalConfig(Strict):
    """How windows are cut and scored."""

    window: int = Field(
        default=1024, ge=2, description="Tokens of context per forward pass (the prefix included); clamped to the "
        "model's maximum positions, with the stride scaled by the same factor.")
    stride: int | None = Field(
        default=None, ge=1, description="How far each window advances, 1 <= stride <= window; default: the window. "
        "Each window scores only tokens no earlier window scored.")
    window_unit: Literal["tokens", "bytes"] = Field(
        default="tokens", description="bytes: window and stride are bytes of text, converted per model at its "
        "bytes per token on the dataset (equal context across tokenizers).")
    strict_window: bool = Field(
        default=False, description="true: a window beyond the model's positions is an error instead of a clamp.")
    prefix: str = Field(
        default="auto", description="The token put before each document: auto (BOS, else EOS), bos, eos, none (the "
        "first text token is context only), bos_every_window, or a literal token.")
    batch_size: int | str = Field(
        default="auto", description="Windows per forward pass, or auto (about 4096 tokens a pass on CPU; from free "
        "memory on CUDA). Halved and retried on out-of-memory.")
    device: str = Field(default="auto", description="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N.")
    seed: int = Field(default=0, description="torch's seed, set before scoring (scoring itself draws no random "
                      "numbers).")
    temperatures: list[float] = Field(
        default_factory=list, description="A temperature sweep (each T > 0; T = 1 is always added): entropy, NLL and "
        "calibration at each T, and the best T. Empty: no sweep.")
    best_temperature: Literal["interpolated", "exact"] = Field(
        default="interpolated", description="interpolated: from the streamed sweep, no extra pass; exact: extra "
        "scoring passes (three temperatures each) that first search outward when the best T lies beyond the "
        "evaluated temperatures (up to T = 1e-3 or 1e3), then narrow the bracket to 1e-6.")
    sweep_kernel: Literal["auto", "compiled", "eager"] = Field(
        default="auto", description="How the sweep's softmax statistics are computed: compiled (one fused loop per "
        "row and T, built by torch.compile on CPU and CUDA; its first block is checked against the eager formulas), "
        "eager (several torch passes per T) or auto (compiled where torch.compile works, else eager). The numbers "
        "agree to float32 rounding: ~1e-7 relative on totals, up to a few 1e-6 on single tokens.")
    min_k: float = Field(default=20.0, gt=0, le=100, description="Min-K% prob: the k% least likely tokens of each "
                         "document, a memorisation signal.")
    target_rank: bool = Field(default=False, description="GLTR target-rank buckets: the share of tokens whose target "
                              "ranks 1, 2–10, 11–100, 101–1000, >1000 at T = 1 (one comparison per vocabulary entry; "
                              "needs full logits).")
    compressors: list[Literal["gzip", "bz2", "xz", "zstd"]] = Field(
        default_factory=lambda: ["gzip", "bz2", "xz", "zstd"], description="Compression baselines on the same bytes; "
        "[] turns them off.")
    protocol: Literal["strided", "llama-perplexity"] = Field(
        default="strided", description="strided: windows of `window` tokens every `stride` per document; "
        "llama-perplexity: llama.cpp's protocol (each document's tokens cut into chunks of `window` = n_ctx tokens, the "
        "remainder dropped, BOS in place of each chunk's first token when the tokenizer adds one, the second half of "
        "each chunk scored; \"PPL ± SE\" as llama.cpp computes it).")
    chunks: int | None = Field(default=None, ge=1, description="llama-perplexity: score at most this many chunks "
                               "(llama-perplexity's `--chunks`); none: all.")
    threads: int | Literal["auto"] = Field(
        default="auto", description="torch intra-op threads for the forward; auto: one per physical core. The "
        "per-token statistics always run on 1 thread.")

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not (t > 0 and math.isfinite(t))]
        if bad:
            raise ValueError(f"expected temperatures > 0, got {bad}")
        return sorted(set(v) | {1.0}) if v else []

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, v: int | str) -> int | str:
        if v == "auto" or (isinstance(v, int) and v >= 1):
            return v
        raise ValueError("expected a positive integer or 'auto'")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError("expected 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v:
            raise ValueError("expected 'auto', 'bos', 'eos', 'none' or a literal token")
        return v

    @model_validator(mode="after")
    def _stride(self) -> "EvalConfig":
        if self.stride is None:
            self.stride = self.window
        if self.chunks is not None and self.protocol != "llama-perplexity":
            raise ValueError("eval.chunks needs `protocol: llama-perplexity`")
        if self.protocol == "llama-perplexity" and self.stride != self.window:
            raise ValueError(f"protocol llama-perplexity scores the second half of each {self.window}-token chunk; "
                             f"eval.stride ({self.stride}) must be left unset")
        if self.stride > self.window:
            raise ValueError(f"stride {self.stride} is larger than window {self.window}; expected 1 <= stride <= window")
        return self
