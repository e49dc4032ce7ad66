"""llama.cpp through llama-cpp-python's low-level ctypes API: a model, its vocabulary, and contexts that decode
several windows at once as separate sequences, with the logits of chosen positions only.

This is the only module that imports ``llama_cpp`` (the optional ``llamacpp`` extra); it mirrors what
``llama-perplexity`` does with the C API, so the two run the same kernels on the same batches:
``n_seq`` windows per ``llama_decode`` (``n_ctx = n_seq × window``, ``n_batch = min(n_batch, n_ctx)``),
the memory (KV cache) cleared before every batch, logits only where a position is scored.

Example (needs a GGUF file)::

    model = LlamaModel("SmolLM2-135M-Instruct.Q4_1.gguf", n_gpu_layers=0, repack=True)
    ctx = model.context(n_seq=4, window=512, n_batch=2048, n_ubatch=512, threads=2, flash_attn="auto")
    logits = ctx.decode(tokens, positions, seq_ids, wants)   # (outputs × n_vocab) float32, a view
"""

from __future__ import annotations

import ctypes
import sys

import llama_cpp as ll
import numpy as np

FLASH = {"auto": ll.LLAMA_FLASH_ATTN_TYPE_AUTO, "on": ll.LLAMA_FLASH_ATTN_TYPE_ENABLED,
         "off": ll.LLAMA_FLASH_ATTN_TYPE_DISABLED}
VERSION = getattr(ll, "__version__", "?")


@ll.llama_log_callback
def _quiet(level, text, user_data):  # llama.cpp logs every load at INFO on stderr; keep errors only
    if level == 4:  # GGML_LOG_LEVEL_ERROR
        sys.stderr.write(text.decode("utf-8", "replace"))


ll.llama_log_set(_quiet, ctypes.c_void_p(0))
ll.llama_backend_init()


class LlamaModel:
    """One GGUF file loaded by llama.cpp, with its vocabulary."""

    def __init__(self, path: str, n_gpu_layers: int = 0, repack: bool = True, vocab_only: bool = False):
        params = ll.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = repack  # llama-perplexity's --repack / --no-repack
        params.vocab_only = vocab_only  # the tokenizer alone (backend openai): no weights read
        self.model = ll.llama_model_load_from_file(path.encode(), params)
        if not self.model:
            raise OSError(f"llama.cpp could not load {path}")
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.n_vocab = ll.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = ll.llama_model_n_ctx_train(self.model)

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(512)
        n = ll.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def description(self) -> str:
        buf = ctypes.create_string_buffer(256)
        ll.llama_model_desc(self.model, buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, add_special: bool = False, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        out = (ll.llama_token * cap)()
        n = ll.llama_tokenize(self.vocab, data, len(data), out, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            out = (ll.llama_token * cap)()
            n = ll.llama_tokenize(self.vocab, data, len(data), out, cap, add_special, parse_special)
        return list(out[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = ll.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, special)
        return buf.raw[:n]

    def text(self, token: int) -> str:
        return ll.llama_vocab_get_text(self.vocab, token).decode("utf-8", "replace")

    def is_control(self, token: int) -> bool:
        return bool(ll.llama_vocab_is_control(self.vocab, token))

    def bos(self) -> int | None:
        t = ll.llama_vocab_bos(self.vocab)
        return None if t < 0 else int(t)

    def eos(self) -> int | None:
        t = ll.llama_vocab_eos(self.vocab)
        return None if t < 0 else int(t)

    def adds_bos(self) -> bool:
        return bool(ll.llama_vocab_get_add_bos(self.vocab))

    def adds_eos(self) -> bool:
        return bool(ll.llama_vocab_get_add_eos(self.vocab))

    def context(self, n_seq: int, window: int, n_batch: int, n_ubatch: int, threads: int,
                flash_attn: str) -> "LlamaContext":
        return LlamaContext(self, n_seq, window, n_batch, n_ubatch, threads, flash_attn)

    def __del__(self):
        if getattr(self, "model", None):
            ll.llama_model_free(self.model)
            self.model = None


class LlamaContext:
    """A llama.cpp context sized for ``n_seq`` windows of ``window`` tokens, as llama-perplexity sizes its own."""

    def __init__(self, model: LlamaModel, n_seq: int, window: int, n_batch: int, n_ubatch: int, threads: int,
                 flash_attn: str):
        self.model, self.n_seq, self.window = model, n_seq, window
        params = ll.llama_context_default_params()
        params.n_ctx = n_seq * window
        params.n_seq_max = n_seq
        params.n_batch = min(n_batch, n_seq * window)
        params.n_ubatch = min(n_ubatch, params.n_batch)
        params.n_threads = params.n_threads_batch = threads
        params.flash_attn_type = FLASH[flash_attn]
        self.n_batch = params.n_batch
        self.ctx = ll.llama_init_from_model(model.model, params)
        if not self.ctx:
            raise OSError(f"llama.cpp could not make a context of {n_seq} × {window} tokens")
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)

    def clear(self) -> None:
        """Forget every sequence (llama-perplexity's ``llama_memory_clear`` before each chunk batch)."""
        ll.llama_memory_clear(ll.llama_get_memory(self.ctx), True)

    def decode(self, tokens: np.ndarray, positions: np.ndarray, seqs: np.ndarray, wants: np.ndarray) -> np.ndarray:
        """One ``llama_decode`` of at most ``n_batch`` tokens; the float32 logits of the ``wants`` positions,
        in batch order, as a view valid until the next decode."""
        n = len(tokens)
        b = self.batch
        b.n_tokens = n
        kept = [np.ascontiguousarray(tokens, dtype=np.int32), np.ascontiguousarray(positions, dtype=np.int32),
                np.ascontiguousarray(wants, dtype=np.int8)]  # alive until copied
        ctypes.memmove(b.token, kept[0].ctypes.data, 4 * n)
        ctypes.memmove(b.pos, kept[1].ctypes.data, 4 * n)
        ctypes.memmove(b.logits, kept[2].ctypes.data, n)
        for i in range(n):
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = int(seqs[i])
        rc = ll.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed (code {rc})")
        outputs = int(wants.sum())
        if outputs == 0:
            return np.empty((0, self.model.n_vocab), dtype=np.float32)
        ptr = ll.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(outputs, self.model.n_vocab))

    def __del__(self):
        if getattr(self, "ctx", None):
            ll.llama_batch_free(self.batch)
            ll.llama_free(self.ctx)
            self.ctx = None
