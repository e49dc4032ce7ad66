"""Execute: batches of windows through the scorer, reduced at once into per-document statistics.

The executor owns the batch order (every window of the run, sorted by length,
cut into batches: the same global plan in one process or many), resume
(batches whose windows are all done are skipped, so the rest is computed on
the very same shapes; a window is done when its document is, or when a
:meth:`Executor.restore`-d part covers it), data-parallel shards, out-of-memory
back-off, and the bookkeeping of which targets of a document are covered.

Each chunk of scored positions goes to every statistic once; their per-row
values are reduced straight away into the document's accumulators (exact sums,
counts, extremes: :mod:`lm_eval_it.engine.accumulate`). A document's per-token NLLs are
held only while it is being scored (they give its NLL summed in text order, and
per-document statistics such as Min-K%); when its last window is done it
becomes a :class:`DocResult` of a few numbers and the per-token arrays are dropped.

Example::

    ex = Executor(prepared, scorer, [NLL(), TemperatureStats([1.0], vocab)], batch_size=4,
                  stat_threads=1, token_sink=writer)
    for result in ex.run():       # DocResults, in completion order
        ...

Its collaborators are keyword-only constructor arguments: ``token_sink(chunk,
nll, rows, keep)`` receives every scored chunk's rows (per-token output),
``on_part(doc, part)`` each document this process finished its share of while
others score the rest (data parallelism), ``on_batch()`` is called after each
scored batch (the open documents' snapshot), and ``stat_threads`` is the
statistics' intra-op thread count.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import replace
from typing import Callable, Iterator

import numpy as np
import torch

from lm_eval_it.engine.accumulate import Accumulator, DocResult, Span
from lm_eval_it.engine.prepare import Prepared, from_sequences
from lm_eval_it.engine.windows import WindowPlan
from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import Chunk, Layout, Statistic

log = logging.getLogger(__name__)


def score_sequences(scorer, seqs, plans, batch_size: int, window_prefix: int | None = None,
                    statistics: list[Statistic] = (), doc_names: list[str] | None = None) -> list[DocResult]:
    """Score ready-made sequences (prefix included) on their plans; results in document order, with token NLLs."""
    ex = Executor(from_sequences(seqs, plans, window_prefix, scorer.vocab), scorer, list(statistics), batch_size,
                  keep_tokens=True, doc_names=doc_names)
    out = {r.doc: r for r in ex.run()}
    return [out[d] for d in range(len(seqs))]


def plan_batches(plan: WindowPlan, batch_size: int) -> list[np.ndarray]:
    """The global batch plan: window rows sorted by length (stable, longest first), cut into batches."""
    order = np.argsort(-plan.length, kind="stable")
    bs = max(1, batch_size)
    return [order[i : i + bs] for i in range(0, len(order), bs)]


class Executor:
    """Scores one :class:`Prepared` with one scorer into per-document results (see the module docstring)."""

    def __init__(self, prepared: Prepared, scorer, statistics: list[Statistic], batch_size: int,
                 keep_tokens: bool = False, doc_names: list[str] | None = None, *,
                 token_sink: Callable | None = None, on_part: Callable | None = None,
                 on_batch: Callable | None = None, stat_threads: int | None = None):
        self.p = prepared
        self.keep_tokens = keep_tokens
        self.doc_names = doc_names
        self.scorer = scorer
        self.stats = statistics
        self.layout = Layout.of(statistics)
        self.batch_size = batch_size
        self.batches = plan_batches(prepared.plan, batch_size)
        self.token_sink = token_sink  # token_sink(chunk, nll, rows, keep): per-token output
        self.on_part = on_part  # on_part(doc, part): this process finished its share of a document
        self.on_batch = on_batch  # on_batch(): a batch is done and its documents were taken
        self.stat_threads = stat_threads  # intra-op threads for the statistics (eval.threads)
        self._dirty = False  # a batch is being added to its documents: their parts are not yet whole windows
        self.acc = Accumulator(prepared.targets, self.layout, statistics, keep_tokens, doc_names)

    # ------------------------------------------------------------------ driver

    def run(self, done: set[int] = frozenset(), shard: list[int] | None = None,
            progress: Callable[[int, int, bool], None] | None = None, empty: bool = True) -> Iterator[DocResult]:
        """Score the batches of ``shard`` (default: all) and yield each document as it completes here."""
        plan = self.p.plan
        mine = range(len(self.batches)) if shard is None else shard
        left = np.zeros(len(self.p.targets), np.int64)
        for i in mine:
            np.add.at(left, plan.doc[self.batches[i]], 1)
        self._left = left
        if empty:  # documents with no scored token (one token and no prefix) complete at once
            for d in np.flatnonzero(self.p.targets == 0).tolist():
                if d not in done:
                    yield self.acc.finish(d, self.acc.new(d))
        queue = deque(self.batches[i] for i in mine)
        limit = None
        while queue:
            batch = queue.popleft()
            if limit and len(batch) > limit:
                queue.extendleft(reversed([batch[j : j + limit] for j in range(0, len(batch), limit)]))
                continue
            docs = plan.doc[batch]
            if all(self._already(w, done) for w in batch):
                retired, results = self._retire(docs, done)
                yield from results
                if progress:
                    progress(plan.n_scored(batch), retired, False)
                continue
            try:
                results = self._score(batch, done)
            except torch.OutOfMemoryError:
                if len(batch) == 1:
                    raise UserError("out of memory with batch_size 1; use a smaller eval.window or dtype") from None
                limit = max(1, len(batch) // 2)
                log.warning("out of memory; retrying with batch_size %d", limit)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                queue.appendleft(batch)
                continue
            yield from results
            if progress:
                progress(plan.n_scored(batch), len(results), True)
            if self.on_batch:
                self.on_batch()

    def _already(self, w: int, done) -> bool:
        """Window ``w`` needs no scoring: its document is done, or its targets were restored (:meth:`restore`)."""
        d, k, start, length, score_from = self.p.plan.row(int(w))
        o = self.acc.open.get(d)
        return d in done or (o is not None and length > score_from
                             and bool(o.covered[self._first_target(k, start, score_from)]))

    def _first_target(self, k: int, start: int, score_from: int) -> int:
        """Index, among its document's scored targets, of the first one window ``k`` scores: llama-perplexity's
        chunks score a fixed count each (their second halves, numbered 0, 1, ...); strided windows every target
        once, in order."""
        per_chunk = self.p.protocol.chunk_targets
        return k * per_chunk if per_chunk else start + score_from

    def _retire(self, docs, done) -> tuple[int, list[DocResult]]:
        """Count off a skipped batch's windows; restored documents whose last window it held are finished."""
        retired, finished = 0, []
        for d in docs:
            self._left[d] -= 1
            retired += self._left[d] == 0
            o = self.acc.open.get(int(d))
            if self._left[d] == 0 and int(d) not in done and o is not None and o.covered.all():
                finished.append(self.acc.finish(int(d)))
        return int(retired), finished

    def restore(self, parts: list[tuple[int, dict]]) -> list[DocResult]:
        """Reopen partly scored documents from a snapshot; their covered windows are not scored again."""
        return [r for d, part in parts if (r := self.acc.merge_part(d, part)) is not None]

    def snapshot(self) -> list[tuple[int, dict]] | None:
        """The open documents' parts, or ``None`` while a batch is half added (then an older snapshot stands)."""
        return None if self._dirty else self.acc.partial()

    def partial(self) -> list[tuple[int, dict]]:
        """Documents only partly scored here (data parallelism): their parts, to merge on rank 0."""
        return self.acc.partial()

    def complete_from_parts(self, parts: list[tuple[int, dict]]) -> list[DocResult]:
        """Documents made whole by merging parts (from checkpoints); incomplete ones are forgotten."""
        return self.acc.complete_from_parts(parts)

    def merge_part(self, d: int, part: dict) -> DocResult | None:
        """Add another process's part of document ``d``; the finished document once it is whole."""
        return self.acc.merge_part(d, part)

    # ------------------------------------------------------------------ one batch

    def _inputs(self, batch) -> tuple[list[np.ndarray], list[np.ndarray], list[Span]]:
        """Each window's input ids, the targets it scores, and where those sit (:class:`Span`)."""
        plan, p = self.p.plan, self.p
        prefix = p.protocol.prefix_id if p.protocol.every_window else None
        inputs, targets, meta = [], [], []
        for w in batch:
            d, k, start, length, score_from = plan.row(int(w))
            seq = p.sequence(d, start, start + length + 1)
            inp, shift = seq[:length], 0
            if prefix is not None and start > 0:
                inp, shift = np.concatenate([[prefix], inp]).astype(np.int32), 1
            inputs.append(inp)
            targets.append(seq[score_from + 1 : length + 1])
            meta.append(Span(d, k, self._first_target(k, start, score_from), length - score_from, score_from + shift))
        return inputs, targets, meta

    def _score(self, batch, done) -> list[DocResult]:
        inputs, targets, meta = self._inputs(batch)
        width = max(len(x) for x in inputs)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        ragged = any(len(x) != width for x in inputs)
        mask = torch.zeros((len(batch), width), dtype=torch.long) if ragged else None
        for r, inp in enumerate(inputs):
            ids[r, : len(inp)] = torch.from_numpy(inp.astype(np.int64))
            if mask is not None:
                mask[r, : len(inp)] = 1
        n = [m.count for m in meta]
        row_win = np.repeat(np.arange(len(batch)), n)
        cols = np.concatenate([np.arange(m.column, m.column + m.count) for m in meta])
        doc = np.repeat([m.doc for m in meta], n)
        position = np.concatenate([np.arange(m.position, m.position + m.count) for m in meta])
        tgt = np.concatenate(targets).astype(np.int64)
        dev = self.scorer.device
        pin = dev.startswith("cuda")
        to = lambda t: (t.pin_memory() if pin else t).to(dev, non_blocking=pin)  # noqa: E731
        t_tgt = to(torch.from_numpy(tgt))
        chunks = self.scorer.chunks(to(ids), None if mask is None else to(mask), to(torch.from_numpy(row_win)),
                                    to(torch.from_numpy(cols)), t_tgt)
        # Every chunk's work is queued first (statistics' rows stay on the device, the logits are
        # dropped); the host then waits once per batch, not once per chunk, and reduces.
        queued = []
        for i0, i1, logits, ref, nll in chunks:
            w = row_win[i0:i1]
            seg = np.flatnonzero(np.r_[True, w[1:] != w[:-1]])
            chunk = Chunk(logits, t_tgt[i0:i1], nll, doc[i0:i1], position[i0:i1], cols[i0:i1] + 1, seg,
                          self._target_bytes(tgt[i0:i1], doc[i0:i1], position[i0:i1]), ref)
            rows = self._rows(chunk)
            queued.append((i0, i1, replace(chunk, logits=None, reference=None), rows, w))
        nll_all = torch.cat([q[2].nll for q in queued]).cpu().numpy() if queued else np.zeros(0, np.float32)
        pending = []  # nothing is added to a document until the whole batch has succeeded (OOM back-off)
        for i0, i1, chunk, rows, w in queued:
            nll_host = nll_all[i0:i1]
            self.acc.check_finite(nll_host, chunk, meta, w, "logits")
            pending.append(self.acc.collect(chunk, rows, nll_host, w, meta, done, self.token_sink is not None))
        self._dirty = True
        for update in pending:
            self.acc.apply(update)
            if self.token_sink is not None:
                self.token_sink(update.chunk, update.nll, update.rows, update.keep)
        finished = []
        open_docs = self.acc.open
        for d in (m.doc for m in meta):
            self._left[d] -= 1
            if self._left[d] == 0 and d not in done and d in open_docs:
                if open_docs[d].covered.all():
                    finished.append(self.acc.finish(d))
                elif self.on_part is not None:  # another process scores the rest of it
                    self.on_part(d, self.acc.part(open_docs[d]))
        self._dirty = False
        return finished

    def _target_bytes(self, tgt: np.ndarray, doc: np.ndarray, position: np.ndarray) -> np.ndarray:
        """UTF-8 bytes of each target: the token's piece, less any bytes its piece holds beyond the text."""
        out = self.p.byte_table[tgt].astype(np.int64)
        excess = self.p.first_excess
        if excess is not None:
            first = position == (0 if self.p.protocol.prefix_id is not None else -1)
            if first.any():
                out[first] = np.maximum(out[first] - excess[doc[first]], 0)
        return out

    def _rows(self, chunk: Chunk) -> dict:
        """Every statistic's per-row values for one chunk, on ``stat_threads`` intra-op threads."""
        threads = torch.get_num_threads()
        if self.stat_threads and self.stat_threads != threads:
            torch.set_num_threads(self.stat_threads)  # many short kernels: extra threads only wait for each other
        try:
            return {stat.name: stat.rows(chunk) for stat in self.stats}
        finally:
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
