"""Prepare: documents become token ids on disk, scored text counts and a window plan (no model).

Documents are tokenised in blocks as they stream past; their ids go to a flat
int32 file in the token cache (``$LM_EVAL_IT_CACHE/tokens``, keyed by the
tokenizer's and the dataset's fingerprints) and are read back a window at a
time, so no corpus-sized array stays in memory. Per document only a few
integers are kept: its token count, the UTF-8 bytes, characters and words that
are scored, and its first 200 characters (for reports).

This module is the one place for the window protocol:

* ``window_unit: bytes`` converts window and stride to tokens at the dataset's
  bytes per token;
* a window beyond the model's positions is clamped, and the stride is scaled
  with it so that the configured overlap fraction is kept;
* the prefix rule (:mod:`lm_eval_it.backends.tokenizer`): with a prefix token every text
  token is scored; with ``prefix: none`` the first token is context only.

What is counted with ``prefix: none``: the bytes are exactly the UTF-8 bytes of
the scored tokens (all bytes minus the first token's, from the tokenizer's
per-token byte lengths); a character or a word counts only when **all** of its
bytes are scored.

Example::

    >>> scored_counts("Hello world", 3)          # first token 'Hel': 'Hello' is not wholly scored
    (8, 8, 1)
    >>> scored_counts("日本語 x", 2)               # the first token ends inside 日
    (9, 4, 1)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lm_eval_it.backends.tokenizer import (
    encode,
    resolve_prefix,
    roundtrip_report,
    token_byte_lengths,
)
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.errors import UserError
from lm_eval_it.stats.metrics import count_words

log = logging.getLogger(__name__)
BLOCK = 256  # documents tokenised at once, at most
BLOCK_CHARS = 1 << 18  # … and about this many characters (~64k tokens)
HEAD_CHARS = 200
_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class Protocol:
    """The window protocol that ran for one model × dataset."""

    window: int  # model input length (a bos_every_window prefix included)
    stride: int  # text tokens each later window advances
    plan_window: int  # text tokens per window
    configured_window: int
    configured_stride: int
    window_unit: str
    prefix_id: int | None
    prefix: str
    every_window: bool  # a prefix token in front of every later window


def token_window(window: int, stride: int, unit: str, bytes_per_token: float, max_positions: int | None,
                 strict: bool, name: str) -> tuple[int, int, str | None]:
    """Window and stride in tokens: converted from bytes if asked, clamped to the model keeping the overlap.

    >>> token_window(4096, 2048, "bytes", 4.2, 512, False, "m")[:2]
    (512, 256)
    """
    if unit == "bytes":
        window = max(2, round(window / bytes_per_token))
        stride = max(1, min(window, round(stride / bytes_per_token)))
    note = None
    if max_positions and window > max_positions:
        if strict:
            raise UserError(f"eval.window: {window} tokens exceeds {name}'s maximum of {max_positions} "
                            "positions; lower it, or drop strict_window to clamp")
        new_stride = max(1, min(max_positions, round(stride * max_positions / window)))
        note = (f"eval.window {window} tokens exceeds {name}'s maximum of {max_positions} positions; "
                f"window clamped to {max_positions} and stride {stride} scaled to {new_stride} "
                f"(the same overlap fraction)")
        window, stride = max_positions, new_stride
    return window, stride, note


def scored_counts(text: str, skip_bytes: int) -> tuple[int, int, int]:
    """(bytes, chars, words) of ``text`` whose first ``skip_bytes`` bytes are context only.

    Words are lm-eval's (pieces between runs of whitespace); a character or a
    word counts only when all its bytes are scored.
    """
    if skip_bytes <= 0:
        return len(text.encode("utf-8")), len(text), count_words(text)
    total = len(text.encode("utf-8"))
    seen, c = 0, 0
    while c < len(text) and seen < skip_bytes:
        seen += len(text[c].encode("utf-8"))
        c += 1
    starts = [0] + [m.end() for m in _WS.finditer(text)]
    words = sum(1 for s in starts if s >= c and (s > 0 or c == 0))
    return max(total - skip_bytes, 0), len(text) - c, words


@dataclass
class TokenStore:
    """Token ids of every document in one flat int32 file, read back a window at a time."""

    path: Path
    bounds: np.ndarray  # (docs + 1,) int64 offsets

    def read(self, doc: int, a: int, b: int) -> np.ndarray:
        lo = int(self.bounds[doc]) + a
        n = max(0, min(b, int(self.bounds[doc + 1] - self.bounds[doc])) - a)
        if self.__dict__.get("_fh") is None:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open for the run, read a window at a time
        self._fh.seek(lo * 4)
        return np.fromfile(self._fh, dtype=np.int32, count=n)

    def length(self, doc: int) -> int:
        return int(self.bounds[doc + 1] - self.bounds[doc])


@dataclass
class Prepared:
    """Everything scoring needs for one model × dataset, with per-document counts only."""

    dataset: str
    store: TokenStore
    protocol: Protocol
    plan: np.ndarray  # (windows, 5) int64: doc, window index, start, length, score_from
    targets: np.ndarray  # (docs,) scored tokens per document
    bytes: np.ndarray
    chars: np.ndarray
    words: np.ndarray
    heads: list[str]
    roundtrip: dict
    byte_table: np.ndarray
    notes: list[str] = field(default_factory=list)
    prefixed: bool = False  # the store already holds S (the prefix included)
    zlib_bits: np.ndarray | None = None  # per document: zlib -9 bits of its text (memorisation signal)
    first_excess: np.ndarray | None = None  # per document: bytes of its first token's piece not in the text
    groups: list[str] | None = None  # per document: its group (group_by)
    compression: dict | None = None  # whole-dataset compressed sizes (compression baselines)

    def sequence(self, doc: int, a: int, b: int) -> np.ndarray:
        """``S[a:b]`` of document ``doc``, where ``S = [prefix] + ids``."""
        pid = self.protocol.prefix_id
        if pid is None or self.prefixed:
            return self.store.read(doc, a, b)
        ids = self.store.read(doc, max(a - 1, 0), b - 1)
        return np.concatenate([np.array([pid], np.int32), ids]) if a == 0 else ids


def _blocks(texts, size: int = BLOCK, chars: int = BLOCK_CHARS):
    """Documents in blocks of at most ``size`` documents and about ``chars`` characters (the tokenizer's
    per-token objects for one block are the transient peak of prepare, so a block is bounded by text)."""
    block, n = [], 0
    for text in texts:
        block.append(text)
        n += len(text)
        if len(block) >= size or n >= chars:
            yield block
            block, n = [], 0
    if block:
        yield block


def _cached_store(key: str, cache: Path) -> tuple[TokenStore | None, Path, Path]:
    cache.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    path, bpath = cache / f"{name}.i32", cache / f"{name}.bounds.npy"
    if path.is_file() and bpath.is_file():
        try:
            bounds = np.load(bpath)
            if path.stat().st_size == 4 * int(bounds[-1]):
                return TokenStore(path, bounds), path, bpath
        except (OSError, ValueError, IndexError):
            pass  # a damaged entry is rebuilt
    return None, path, bpath


def prepare(tokenizer, texts, dataset: str, key: str, cache: Path, ev, max_positions: int | None,
            model_name: str, groups: list[str] | None = None, compressors=None) -> Prepared:
    """One streaming pass over the documents: tokenise (or reuse the token cache), count the scored text,
    check losslessness, compress; then plan the windows."""
    from lm_eval_it.stats.compression import StreamCompressor
    from lm_eval_it.stats.memorisation.signals import zlib_bits

    prefix_id, prefix_desc = resolve_prefix(tokenizer, ev.prefix)
    cached, path, bpath = _cached_store(key, cache)
    table = token_byte_lengths(tokenizer)
    nbytes, chars, words, zbits, heads, notes, first_excess = [], [], [], [], [], [], []
    lossy = {"lossy_documents": 0, "lossy_bytes": 0, "sample": None}
    comp = StreamCompressor(compressors) if compressors is not None else None
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    out = None if cached else open(tmp, "wb")
    counts, total_bytes, n = [0], 0, 0
    try:
        for block in _blocks(texts):
            ids_block = ([cached.read(n + j, 0, cached.length(n + j)) for j in range(len(block))]
                         if cached else [np.asarray(x, np.int32) for x in encode(tokenizer, block)])
            decoded = []
            for text, ids in zip(block, ids_block):
                if out is not None:
                    ids.tofile(out)
                    counts.append(len(ids))
                b = len(text.encode("utf-8"))
                total_bytes += b
                skip = 0
                # bytes the tokenizer's pieces hold beyond the text (a SentencePiece "▁" put in front):
                # charged to the first token
                excess = min(max(int(table[ids].sum()) - b, 0), int(table[ids[0]])) if ids.size else 0
                first_excess.append(excess)
                if prefix_id is None and ids.size:
                    skip = max(int(table[ids[0]]) - excess, 0) if ids.size > 1 else b
                c = scored_counts(text, skip)
                nbytes.append(c[0]); chars.append(c[1]); words.append(c[2])
                zbits.append(zlib_bits(text))
                heads.append(text[:HEAD_CHARS])
                decoded.append(tokenizer.decode(ids.tolist(), clean_up_tokenization_spaces=False))
                if comp is not None:
                    comp.feed(text)
            _merge_roundtrip(lossy, roundtrip_report(block, decoded), n)
            n += len(block)
    except BaseException:
        if out is not None:
            out.close()
            tmp.unlink(missing_ok=True)
        raise
    if out is not None:
        out.close()
        bounds = np.cumsum(counts, dtype=np.int64)
        os.replace(tmp, path)
        btmp = bpath.with_name(f"{bpath.stem}.{os.getpid()}.tmp.npy")
        np.save(btmp, bounds)
        os.replace(btmp, bpath)
        store = TokenStore(path, bounds)
    else:
        store = cached
    if len(store.bounds) != n + 1:
        raise UserError(f"token cache {path} does not match dataset {dataset!r}; delete it and run again")
    lengths = np.diff(store.bounds)
    every = ev.prefix == "bos_every_window"
    window, stride, note = token_window(ev.window, ev.stride, ev.window_unit, total_bytes / max(1, int(lengths.sum())),
                                        max_positions, ev.strict_window, model_name)
    if note:
        notes.append(note)
    plan_w, plan_s = (window - 1, min(stride, window - 1)) if every else (window, stride)
    n_seq = lengths + (prefix_id is not None)
    rows = [(d, k, w.start, w.length, w.score_from)
            for d in range(n) for k, w in enumerate(plan_windows(int(n_seq[d]), plan_w, plan_s))]
    plan = np.array(rows, dtype=np.int64).reshape(-1, 5)
    proto = Protocol(window=window, stride=plan_s, plan_window=plan_w, configured_window=ev.window,
                     configured_stride=ev.stride, window_unit=ev.window_unit, prefix_id=prefix_id,
                     prefix=prefix_desc, every_window=every)
    arr = lambda x: np.asarray(x, np.int64)  # noqa: E731
    prepared = Prepared(dataset, store, proto, plan, np.maximum(n_seq - 1, 0), arr(nbytes), arr(chars), arr(words),
                        heads, lossy, table, notes)
    prepared.zlib_bits = arr(zbits)
    prepared.first_excess = arr(first_excess)
    prepared.groups = groups
    prepared.compression = (None if comp is None else
                            {"bytes_in": comp.bytes_in, "compressed_bytes": comp.result()})
    return prepared


class MemoryStore:
    """Token ids held in memory (small inputs: tests and the Python API's ready-made sequences)."""

    def __init__(self, seqs):
        self.seqs = [np.asarray(s, dtype=np.int32) for s in seqs]
        self.bounds = np.cumsum([0] + [len(s) for s in self.seqs], dtype=np.int64)

    def read(self, doc: int, a: int, b: int) -> np.ndarray:
        return self.seqs[doc][a:b]

    def length(self, doc: int) -> int:
        return len(self.seqs[doc])


def from_sequences(seqs, plans, window_prefix: int | None = None, vocab: int = 1) -> Prepared:
    """A :class:`Prepared` over ready-made sequences ``S`` (prefix included) and their window plans."""
    rows = [(d, k, w.start, w.length, w.score_from) for d, plan in enumerate(plans) for k, w in enumerate(plan)]
    plan = np.array(rows, dtype=np.int64).reshape(-1, 5)
    width = int(plan[:, 3].max()) if len(plan) else 1
    proto = Protocol(width + (window_prefix is not None), width, width, width, width, "tokens", window_prefix,
                     "sequences", window_prefix is not None)
    n = np.array([max(len(s) - 1, 0) for s in seqs], dtype=np.int64)
    zeros = np.zeros(len(seqs), np.int64)
    return Prepared("sequences", MemoryStore(seqs), proto, plan, n, zeros, zeros, zeros, [""] * len(seqs),
                    {"lossy_documents": 0, "lossy_bytes": 0, "sample": None}, np.zeros(max(vocab, 1), np.int32),
                    prefixed=True)


def _merge_roundtrip(total: dict, part: dict, offset: int) -> None:
    total["lossy_documents"] += part["lossy_documents"]
    total["lossy_bytes"] += part["lossy_bytes"]
    for k in ("inserted_bytes", "deleted_bytes"):
        if k in part:
            total[k] = total.get(k, 0) + part[k]
    if total["sample"] is None and part["sample"] is not None:
        total["sample"] = dict(part["sample"], document=part["sample"]["document"] + offset)


def min_context(plan: np.ndarray, every_window: bool) -> int:
    """The fewest input tokens any scored target was predicted from (a per-window prefix counts)."""
    if not len(plan):
        return 0
    ctx = plan[:, 4] + 1 + (every_window & (plan[:, 2] > 0))
    return int(ctx.min())
