"""Prepare: documents become token ids on disk, scored text counts and a window plan (no model).

Documents are tokenised in blocks as they stream past; their ids go to a flat
int32 file in the token cache (:mod:`lm_eval_it.engine.tokens`, keyed by the
tokenizer's and the dataset's fingerprints) and are read back a window at a
time, so no corpus-sized array stays in memory. Per document only a few
integers are kept: its token count, the UTF-8 bytes, characters and words that
are scored (:func:`lm_eval_it.engine.protocol.scored_counts`), its zlib size and
its first 200 characters (for reports). Then the window protocol is resolved
(:mod:`lm_eval_it.engine.protocol`) and every document's windows are planned
(:class:`lm_eval_it.engine.windows.WindowPlan`). With ``protocol: llama-perplexity`` the
windows are llama.cpp's chunks (:func:`lm_eval_it.engine.windows.plan_chunks`) and the bytes
are those of the scored tokens, from a second pass over the token file (:func:`_chunk_bytes`);
characters and words are not counted (0, so their metrics are NaN: not available).

Example (ready-made sequences, as the Python API and the tests use)::

    >>> p = from_sequences([[0, 5, 6, 7]], [plan_windows(4, 2, 2)])
    >>> p.plan.start.tolist(), p.plan.score_from.tolist(), p.targets.tolist()
    ([0, 1], [0, 1], [3])
    >>> p.sequence(0, 1, 3).tolist()
    [5, 6]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lm_eval_it.backends.tokenizer import (
    encode,
    resolve_prefix,
    roundtrip_report,
    token_byte_lengths,
    tokenizer_info,
)
from lm_eval_it.engine.protocol import (
    Protocol,
    resolve_llama,
    resolve_protocol,
    scored_counts,
    token_window,
)
from lm_eval_it.engine.tokens import CacheEntry, MemoryStore, TokenStore, blocks
from lm_eval_it.engine.windows import WindowPlan, plan_chunks, plan_windows
from lm_eval_it.errors import UserError
from lm_eval_it.stats.compression import StreamCompressor
from lm_eval_it.stats.memorisation.signals import zlib_bits

# scored_counts and token_window (lm_eval_it.engine.protocol) are named here too: callers import them from prepare
__all__ = ["Prepared", "prepare", "from_sequences", "min_context", "scored_counts", "token_window"]

log = logging.getLogger(__name__)
HEAD_CHARS = 200


@dataclass
class Prepared:
    """Everything scoring needs for one model × dataset, with per-document counts only."""

    dataset: str
    store: TokenStore | MemoryStore
    protocol: Protocol
    plan: WindowPlan  # one row per window: doc, index, start, length, score_from
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


class _Scan:
    """The per-document counts of one streaming pass: scored bytes, characters and words, zlib bits, heads,
    the tokenizer's losslessness and the whole-dataset compressed sizes."""

    def __init__(self, tokenizer, prefix_id: int | None, table: np.ndarray, compressors):
        self.tokenizer, self.prefix_id, self.table = tokenizer, prefix_id, table
        self.bytes, self.chars, self.words, self.zbits, self.heads, self.first_excess = [], [], [], [], [], []
        self.roundtrip = {"lossy_documents": 0, "lossy_bytes": 0, "sample": None}
        self.comp = StreamCompressor(compressors) if compressors is not None else None
        self.total_bytes, self.n = 0, 0

    def add_block(self, block: list[str], ids_block: list[np.ndarray]) -> None:
        decoded = [self._add(text, ids) for text, ids in zip(block, ids_block)]
        _merge_roundtrip(self.roundtrip, roundtrip_report(block, decoded), self.n)
        self.n += len(block)

    def _add(self, text: str, ids: np.ndarray) -> str:
        """Count one document; its ids decoded (for the round-trip check)."""
        table, b = self.table, len(text.encode("utf-8"))
        self.total_bytes += b
        # bytes the tokenizer's pieces hold beyond the text (a SentencePiece "▁" put in front): charged to the
        # first token
        excess = min(max(int(table[ids].sum()) - b, 0), int(table[ids[0]])) if ids.size else 0
        self.first_excess.append(excess)
        skip = 0
        if self.prefix_id is None and ids.size:
            skip = max(int(table[ids[0]]) - excess, 0) if ids.size > 1 else b
        c = scored_counts(text, skip)
        self.bytes.append(c[0]); self.chars.append(c[1]); self.words.append(c[2])  # noqa: E702
        self.zbits.append(zlib_bits(text))
        self.heads.append(text[:HEAD_CHARS])
        if self.comp is not None:
            self.comp.feed(text)
        return self.tokenizer.decode(ids.tolist(), clean_up_tokenization_spaces=False)

    def prepared(self, dataset: str, store, proto: Protocol, plan: WindowPlan, n_seq: np.ndarray,
                 notes: list[str], groups: list[str] | None) -> Prepared:
        arr = lambda x: np.asarray(x, np.int64)  # noqa: E731
        compression = None if self.comp is None else {"bytes_in": self.comp.bytes_in,
                                                      "compressed_bytes": self.comp.result()}
        return Prepared(dataset, store, proto, plan, np.maximum(n_seq - 1, 0), arr(self.bytes), arr(self.chars),
                        arr(self.words), self.heads, self.roundtrip, self.table, notes, zlib_bits=arr(self.zbits),
                        first_excess=arr(self.first_excess), groups=groups, compression=compression)


def _tokenise(tokenizer, texts, entry: CacheEntry, scan: _Scan) -> TokenStore:
    """Stream the documents in blocks: their ids from the cache entry, or encoded and written to it; counted."""
    cached = entry.store
    try:
        for block in blocks(texts):
            if cached is not None:
                ids_block = [cached.read(scan.n + j, 0, cached.length(scan.n + j)) for j in range(len(block))]
            else:
                ids_block = [np.asarray(x, np.int32) for x in encode(tokenizer, block)]
                for ids in ids_block:
                    entry.write(ids)
            scan.add_block(block, ids_block)
    except BaseException:
        entry.abort()
        raise
    return entry.close()


def prepare(tokenizer, texts, dataset: str, key: str, cache: Path, ev, max_positions: int | None,
            model_name: str, groups: list[str] | None = None, compressors=None) -> Prepared:
    """One streaming pass over the documents: tokenise (or reuse the token cache), count the scored text,
    check losslessness, compress; then resolve the window protocol and plan the windows."""
    llama = getattr(ev, "protocol", "strided") == "llama-perplexity"
    if llama:
        adds = (tokenizer.info() if hasattr(tokenizer, "info") else tokenizer_info(tokenizer))["adds_bos"]
        proto = resolve_llama(ev, tokenizer.bos_token_id, adds, max_positions, model_name)
        prefix_id, prefix_desc = proto.prefix_id, proto.prefix
    else:
        prefix_id, prefix_desc = resolve_prefix(tokenizer, ev.prefix)
    entry = CacheEntry(key, cache)
    scan = _Scan(tokenizer, prefix_id, token_byte_lengths(tokenizer), compressors)
    store = _tokenise(tokenizer, texts, entry, scan)
    if len(store.bounds) != scan.n + 1:
        raise UserError(f"token cache {entry.path} does not match dataset {dataset!r}; delete it and run again")
    lengths = np.diff(store.bounds)
    if llama:
        return _prepare_chunks(scan, dataset, store, proto, lengths, groups)
    proto, note = resolve_protocol(ev, prefix_id, prefix_desc, scan.total_bytes / max(1, int(lengths.sum())),
                                   max_positions, model_name)
    n_seq = lengths + (prefix_id is not None)
    plan = WindowPlan.of(plan_windows(int(m), proto.plan_window, proto.stride) for m in n_seq)
    return scan.prepared(dataset, store, proto, plan, n_seq, [note] if note else [], groups)


def _prepare_chunks(scan: _Scan, dataset: str, store, proto: Protocol, lengths: np.ndarray,
                    groups) -> Prepared:
    """llama-perplexity: each document's chunks (the first ``proto.chunks`` of the dataset), their scored bytes."""
    bos = proto.prefix_id is not None
    n_seq = lengths + bos
    plans, left = [], proto.chunks
    for m in n_seq:
        plans.append(plan_chunks(int(m), proto.window, bos, left))
        left = None if left is None else left - len(plans[-1])
    n_chunks = np.array([len(p) for p in plans], np.int64)
    if not n_chunks.sum():
        raise UserError(f"dataset {dataset!r} gives no llama-perplexity chunk of n_ctx={proto.window} tokens: its "
                        f"longest document has {int(n_seq.max(initial=0))} tokens (BOS included: {bos})")
    plan = WindowPlan.of(plans)
    zeros = np.zeros(len(n_seq), np.int64)
    out = scan.prepared(dataset, store, proto, plan, n_seq, [], groups)
    return replace(out, targets=n_chunks * proto.chunk_targets, bytes=_chunk_bytes(store, plans, scan.table, bos),
                   chars=zeros, words=zeros, first_excess=None)


def _chunk_bytes(store, plans, table: np.ndarray, bos: bool) -> np.ndarray:
    """Per document: the UTF-8 bytes of its scored tokens (their pieces' byte lengths), one document read at a time."""
    out = np.zeros(len(plans), np.int64)
    for d, windows in enumerate(plans):
        if windows:
            ids = store.read(d, 0, store.length(d))
            for w in windows:  # targets S[start+score_from+1 .. start+length]; text index = S index - bos
                out[d] += int(table[ids[w.start + w.score_from + 1 - bos : w.start + w.length + 1 - bos]].sum())
    return out


def from_sequences(seqs, plans, window_prefix: int | None = None, vocab: int = 1) -> Prepared:
    """A :class:`Prepared` over ready-made sequences ``S`` (prefix included) and their window plans."""
    plan = WindowPlan.of(plans)
    width = int(plan.length.max()) if len(plan) else 1
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


def min_context(plan: WindowPlan, every_window: bool) -> int:
    """The fewest input tokens any scored target was predicted from (a per-window prefix counts)."""
    if not len(plan):
        return 0
    return int((plan.score_from + 1 + (every_window & (plan.start > 0))).min())
