"""Encode and decode token streams with a model: one loop, run the same way by both sides.

:func:`step_through` walks the :class:`~lm_eval_it.compress.schedule.Schedule`: per round a fresh KV
cache, then one ``(lanes, 1)`` forward per step. At each step it hands the next-token probabilities of the
lanes that have a target to a callback. The encoder's callback codes the known targets; the decoder's
decodes them. Both then feed them back as the next inputs, so the decoder recomputes exactly the
encoder's probabilities (same model, dtype, threads, batch shapes and order; never a full-sequence
forward, which need not match incremental decoding bit for bit).

The KV cache (:mod:`~lm_eval_it.compress.kvcache`) is written in place, one buffer of a chunk per layer.

Probabilities are the float64 of a float32 softmax of the logits. The encoder's count of the model's own code
length (−log₂ p of each target, what ``lm-eval-it run`` reports) comes from a float64 log-softmax of the same
logits, so it stays finite where the float32 softmax underflows. constriction's ``Categorical``
(``perfect=False``) turns each row into integer frequencies deterministically and gives every token at
least the smallest representable probability, so any token can be coded.

Example (a model that always predicts uniform; see tests/compress for real models)::

    codec = Codec(model, bos=0, vocab=V, chunk=512, lanes=8)
    words, nll_bits = codec.encode(ids, raw=b"")
    assert (codec.decode(words, len(ids), n_raw=0)[0] == ids).all()
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import constriction
import numpy as np
import torch
from lm_eval_it.compress.kvcache import in_place_cache
from lm_eval_it.compress.schedule import Schedule

PAD = 0  # the input of a lane with no window left in a round (its outputs are never used)
LN2 = math.log(2.0)


class Codec:
    def __init__(self, model, bos: int, vocab: int, chunk: int, lanes: int, device: str = "cpu",
                 progress: Callable[[int], None] | None = None):
        self.model, self.bos, self.vocab, self.chunk, self.lanes = model, bos, vocab, chunk, lanes
        self.device, self.progress = device, progress
        self.family = constriction.stream.model.Categorical(perfect=False)
        self.count_bits = False  # the encoder sets it: the model's own code length, -log2 p of each target
        params = inspect.signature(model.forward).parameters  # transformers 5 names the cache `cache`
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.layers = int(text.num_hidden_layers)

    def new_cache(self):
        """A fresh KV cache of one window's length (in place: no per-step copy of the whole cache)."""
        return in_place_cache(self.layers, self.chunk)

    def probabilities(self, ids: np.ndarray, cache) -> tuple[np.ndarray, torch.Tensor | None]:
        """``(probs, logp)`` after feeding each row's tokens (``ids``: (rows,) one token each, or (rows, n) to
        prefill ``n``; the last position's): ``probs`` (rows, vocab) float64 of a float32 softmax, what both sides
        code with; ``logp`` the float64 log-softmax of the logits when the encoder counts bits (else None), finite
        where a float32 softmax underflows to 0."""
        x = torch.from_numpy(ids.astype(np.int64)).to(self.device)
        x = x[:, None] if x.dim() == 1 else x
        with torch.inference_mode():
            logits = self.model(input_ids=x, use_cache=True, **{self.cache_kw: cache}).logits[:, -1, : self.vocab]
            logp = torch.log_softmax(logits.double(), dim=-1).cpu() if self.count_bits else None
        return torch.softmax(logits.float(), dim=-1).double().cpu().numpy(), logp

    def step_through(self, s: np.ndarray, sched: Schedule, code: Callable[[np.ndarray, np.ndarray], None]) -> None:
        """Run the schedule over ``S`` (known inputs filled in); ``code(probs, logp, positions)`` fills
        ``S[positions]`` (decoder) or codes them (encoder) before they become inputs."""
        for r in range(sched.rounds):
            spans = [sched.window_span(w) if w is not None else (0, 0) for w in sched.round_windows(r)]
            steps = max(n for _, n in spans)
            cache = self.new_cache()
            x = np.array([s[a] if n else PAD for a, n in spans], np.int64)
            for t in range(steps):
                probs, logp = self.probabilities(x, cache)
                live = np.array([t < n for _, n in spans])
                pos = np.array([a + t + 1 for a, n in spans if t < n], np.int64)
                code(probs[live], None if logp is None else logp[torch.from_numpy(live)], pos)
                x = np.where(live, s[np.minimum([a + t + 1 for a, _ in spans], len(s) - 1)], PAD)
                if self.progress is not None:
                    self.progress(int(live.sum()))
        if sched.final is not None:
            self.back_filled(s, sched.final, code)

    def back_filled(self, s: np.ndarray, w, code) -> None:
        """The run's last window, back-filled: its context (decoded by now) in one prefill, then one target a step."""
        cache = self.new_cache()
        probs, logp = self.probabilities(s[None, w.start: w.start + w.score_from + 1], cache)
        for t in range(w.score_from, w.length):
            pos = np.array([w.start + t + 1], np.int64)
            code(probs, logp, pos)
            if self.progress is not None:
                self.progress(1)
            if t + 1 < w.length:
                probs, logp = self.probabilities(s[pos], cache)

    def encode(self, ids: np.ndarray, raw: bytes) -> tuple[np.ndarray, float]:
        """``(compressed words, model bits of the targets)``: raw bytes, lane starts, then every target."""
        sched = Schedule(len(ids), self.chunk, self.lanes)
        s = np.r_[self.bos, np.asarray(ids, np.int64)]
        enc = constriction.stream.queue.RangeEncoder()
        if raw:
            enc.encode(np.frombuffer(raw, np.uint8).astype(np.int32), constriction.stream.model.Uniform(256))
        starts = sched.lane_starts()
        if starts:
            enc.encode(s[starts].astype(np.int32), constriction.stream.model.Uniform(self.vocab))
        bits = [0.0]

        def code(probs, logp, pos):
            sym = s[pos].astype(np.int32)
            enc.encode(sym, self.family, probs)
            bits[0] -= float(logp[torch.arange(len(pos)), torch.from_numpy(sym).long()].sum()) / LN2

        self.count_bits = True
        try:
            self.step_through(s, sched, code)
        finally:
            self.count_bits = False
        return enc.get_compressed(), bits[0]

    def decode(self, words: np.ndarray, n_ids: int, n_raw: int) -> tuple[np.ndarray, bytes]:
        """``(token ids, raw bytes)`` from the compressed words, in the encoder's order."""
        sched = Schedule(n_ids, self.chunk, self.lanes)
        dec = constriction.stream.queue.RangeDecoder(np.asarray(words, np.uint32))
        raw = b""
        if n_raw:
            raw = dec.decode(constriction.stream.model.Uniform(256), n_raw).astype(np.uint8).tobytes()
        s = np.full(n_ids + 1, -1, np.int64)
        s[0] = self.bos
        starts = sched.lane_starts()
        if starts:
            s[starts] = dec.decode(constriction.stream.model.Uniform(self.vocab), len(starts))

        def code(probs, _logp, pos):
            s[pos] = dec.decode(self.family, probs)

        self.step_through(s, sched, code)
        return s[1:], raw
