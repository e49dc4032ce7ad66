"""Execute: batches of windows through the scorer, reduced at once into per-document statistics.

The executor owns the batch order (every window of the run, sorted by length,
cut into batches: the same global plan in one process or many), resume
(batches whose documents are all done are skipped, so the rest is computed on
the very same shapes), data-parallel shards, out-of-memory back-off, and the
bookkeeping of which targets of a document are covered.

Each chunk of scored positions goes to every statistic once; their per-row
values are reduced straight away into the document's accumulators (exact sums,
counts, extremes). A document's per-token NLLs are held only while it is being
scored (they give its NLL summed in text order, and per-document statistics
such as Min-K%); when its last window is done it becomes a
:class:`DocResult` of a few numbers and the per-token arrays are dropped.

Example::

    ex = Executor(prepared, scorer, [NLL(), TemperatureStats([1.0], vocab)], batch_size=4)
    for result in ex.run():       # DocResults, in completion order
        ...
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import UserError
from .prepare import Prepared
from .tokenstats.base import Chunk, Count, ExactSum, Extreme, Layout, Statistic, Sum

log = logging.getLogger(__name__)


@dataclass
class DocResult:
    """One document's sufficient statistics (a few KB at most, never per-token arrays)."""

    doc: int
    nll: float
    tokens: int
    sums: np.ndarray  # float64, the layout's Sum fields
    counts: dict[str, np.ndarray]
    extremes: dict[str, np.ndarray]  # name -> (2, *shape): min, max
    extra: dict[str, float] = field(default_factory=dict)
    token_nll: np.ndarray | None = None  # only with Executor(keep_tokens=True): small inputs, tests


@dataclass
class _Open:
    """A document being scored: exact partial sums and its per-token NLLs so far."""

    sums: ExactSum
    counts: dict
    extremes: dict
    nll: np.ndarray
    covered: np.ndarray
    left: int


def score_sequences(scorer, seqs, plans, batch_size: int, window_prefix: int | None = None,
                    statistics: list[Statistic] = (), doc_names: list[str] | None = None) -> list[DocResult]:
    """Score ready-made sequences (prefix included) on their plans; results in document order, with token NLLs."""
    from .prepare import from_sequences

    ex = Executor(from_sequences(seqs, plans, window_prefix, scorer.vocab), scorer, list(statistics), batch_size,
                  keep_tokens=True, doc_names=doc_names)
    out = {r.doc: r for r in ex.run()}
    return [out[d] for d in range(len(seqs))]


def plan_batches(plan: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """The global batch plan: window rows sorted by length (stable), cut into batches."""
    order = np.argsort(-plan[:, 3], kind="stable")
    bs = max(1, batch_size)
    return [order[i : i + bs] for i in range(0, len(order), bs)]


class Executor:
    def __init__(self, prepared: Prepared, scorer, statistics: list[Statistic], batch_size: int,
                 keep_tokens: bool = False, doc_names: list[str] | None = None):
        self.p = prepared
        self.keep_tokens = keep_tokens
        self.doc_names = doc_names
        self.scorer = scorer
        self.stats = statistics
        self.layout = Layout.of(statistics)
        self.batch_size = batch_size
        self.batches = plan_batches(prepared.plan, batch_size)
        self.token_sink: Callable | None = None  # sink(chunk, rows) for per-token output
        self.on_part: Callable | None = None  # on_part(doc, part): this process finished its share of a document
        self.stat_threads: int | None = None  # intra-op threads for the statistics (eval.threads)
        self._open: dict[int, _Open] = {}

    # ------------------------------------------------------------------ driver

    def run(self, done: set[int] = frozenset(), shard: list[int] | None = None,
            progress: Callable[[int, int, bool], None] | None = None, empty: bool = True) -> Iterator[DocResult]:
        """Score the batches of ``shard`` (default: all) and yield each document as it completes here."""
        plan = self.p.plan
        mine = range(len(self.batches)) if shard is None else shard
        left = np.zeros(len(self.p.targets), np.int64)
        for i in mine:
            np.add.at(left, plan[self.batches[i], 0], 1)
        self._left = left
        if empty:  # documents with no scored token (one token and no prefix) complete at once
            for d in np.flatnonzero(self.p.targets == 0).tolist():
                if d not in done:
                    yield self._finish(d, self._new(d))
        queue = deque(self.batches[i] for i in mine)
        limit = None
        while queue:
            batch = queue.popleft()
            if limit and len(batch) > limit:
                queue.extendleft(reversed([batch[j : j + limit] for j in range(0, len(batch), limit)]))
                continue
            docs = plan[batch, 0]
            if all(int(d) in done for d in docs):
                finished = self._retire(docs)
                if progress:
                    progress(int((plan[batch, 3] - plan[batch, 4]).sum()), finished, False)
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
                progress(int((plan[batch, 3] - plan[batch, 4]).sum()), len(results), True)

    def _retire(self, docs) -> int:
        finished = 0
        for d in docs:
            self._left[d] -= 1
            finished += self._left[d] == 0
        return int(finished)

    def partial(self) -> list[tuple[int, dict]]:
        """Documents only partly scored here (data parallelism): their parts, to merge on rank 0."""
        return [(d, self._part(o)) for d, o in self._open.items()]

    @staticmethod
    def _part(o: _Open) -> dict:
        return {"sums": o.sums.to_json(), "counts": o.counts, "extremes": o.extremes, "nll": o.nll,
                "covered": o.covered}

    def complete_from_parts(self, parts: list[tuple[int, dict]]) -> list[DocResult]:
        """Documents made whole by merging parts (from checkpoints); incomplete ones are forgotten."""
        out = [r for d, part in parts if (r := self.merge_part(d, part)) is not None]
        self._open.clear()
        return out

    def merge_part(self, d: int, part: dict) -> DocResult | None:
        """Add another process's part of document ``d``; the finished document once it is whole."""
        o = self._open.get(d) or self._new(d)
        self._open[d] = o
        o.sums.merge(ExactSum.from_json(part["sums"]))
        for k, v in part["counts"].items():
            o.counts[k] += v
        for k, v in part["extremes"].items():
            o.extremes[k][0] = np.minimum(o.extremes[k][0], v[0])
            o.extremes[k][1] = np.maximum(o.extremes[k][1], v[1])
        take = part["covered"] & ~o.covered
        o.nll[take] = part["nll"][take]
        o.covered |= part["covered"]
        if o.covered.all():
            return self._finish(d)
        return None

    # ------------------------------------------------------------------ one batch

    def _new(self, d: int) -> _Open:
        n = int(self.p.targets[d])
        lay = self.layout
        return _Open(ExactSum(lay.size), {k: np.zeros(s, np.int64) for k, s in lay.counts.items()},
                     {k: np.stack([np.full(s, np.inf), np.full(s, -np.inf)]) for k, s in lay.extremes.items()},
                     np.zeros(n, np.float32), np.zeros(n, bool), 0)

    def _inputs(self, batch):
        plan, p = self.p.plan, self.p
        prefix = p.protocol.prefix_id if p.protocol.every_window else None
        inputs, targets, meta = [], [], []
        for r, w in enumerate(batch):
            d, k, start, length, score_from = (int(x) for x in plan[w])
            seq = p.sequence(d, start, start + length + 1)
            inp, shift = seq[:length], 0
            if prefix is not None and start > 0:
                inp, shift = np.concatenate([[prefix], inp]).astype(np.int32), 1
            inputs.append(inp)
            targets.append(seq[score_from + 1 : length + 1])
            meta.append((d, k, start + score_from, length - score_from, score_from + shift))
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
        n = [m[3] for m in meta]
        row_win = np.repeat(np.arange(len(batch)), n)
        cols = np.concatenate([np.arange(m[4], m[4] + m[3]) for m in meta])
        doc = np.repeat([m[0] for m in meta], n)
        position = np.concatenate([np.arange(m[2], m[2] + m[3]) for m in meta])
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
            self._check_finite(nll_host, chunk, meta, w, "logits")
            pending.append(self._collect(chunk, rows, nll_host, w, meta, done))
        for update in pending:
            self._apply(*update)
        finished = []
        for d, k, t0, cnt, _ in meta:
            self._left[d] -= 1
            if self._left[d] == 0 and d not in done and d in self._open:
                if self._open[d].covered.all():
                    finished.append(self._finish(d))
                elif self.on_part is not None:  # another process scores the rest of it
                    self.on_part(d, self._part(self._open[d]))
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

    def _collect(self, chunk: Chunk, stat_rows: dict, nll_host: np.ndarray, w: np.ndarray, meta, done) -> tuple:
        """Reduce one chunk's statistic rows to per-segment sums, counts and extremes (not yet added to any document)."""
        seg = chunk.segments
        keep = np.array([int(d) not in done for d in chunk.doc[seg]])
        vec = np.zeros((len(seg), self.layout.size))
        counts, extremes, all_rows = [], [], {}
        bounds = list(seg) + [len(chunk.doc)]
        for stat in self.stats:
            rows = stat_rows[stat.name]
            for f in stat.fields():
                key = f"{stat.name}.{f.name}"
                v = rows[f.name]
                v = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
                if isinstance(f, Count):
                    inner = int(np.prod(f.shape, dtype=np.int64))
                    flat = v.reshape(len(v), inner) + np.arange(inner) * f.bins
                    counts += [(j, key, np.bincount(flat[bounds[j] : bounds[j + 1]].ravel(),
                                                    minlength=inner * f.bins).reshape(self.layout.counts[key]))
                               for j in range(len(seg)) if keep[j]]
                    continue
                v = v.astype(np.float64).reshape(len(v), -1)
                if not np.isfinite(v).all():
                    self._check_finite(v, chunk, meta, w, key)
                if isinstance(f, Sum):
                    vec[:, self.layout.sums[key][0]] = np.add.reduceat(v, seg, axis=0)
                else:
                    shape = self.layout.extremes[key]
                    extremes += [(j, key, v[bounds[j] : bounds[j + 1]].min(0).reshape(shape),
                                  v[bounds[j] : bounds[j + 1]].max(0).reshape(shape)) for j in range(len(seg)) if keep[j]]
            all_rows[stat.name] = rows
        if self.token_sink is not None:
            all_rows = {k: {f: (x.detach().cpu() if isinstance(x, torch.Tensor) else x) for f, x in r.items()}
                        for k, r in all_rows.items()}
            host = Chunk(None, chunk.targets.cpu(), None, chunk.doc, chunk.position, chunk.context, seg,
                         chunk.target_bytes)
            return host, nll_host, vec, counts, extremes, keep, all_rows
        return Chunk(None, None, None, chunk.doc, chunk.position, None, seg, None), nll_host, vec, counts, \
            extremes, keep, None

    def _apply(self, chunk: Chunk, nll_host, vec, counts, extremes, keep, all_rows) -> None:
        seg = chunk.segments
        bounds = list(seg) + [len(chunk.doc)]
        for j in range(len(seg)):
            if not keep[j]:
                continue
            d = int(chunk.doc[seg[j]])
            o = self._open.get(d) or self._open.setdefault(d, self._new(d))
            o.sums.add(vec[j])
            pos = chunk.position[bounds[j] : bounds[j + 1]]
            o.nll[pos] = nll_host[bounds[j] : bounds[j + 1]]
            o.covered[pos] = True
        for j, key, c in counts:
            self._open[int(chunk.doc[seg[j]])].counts[key] += c
        for j, key, lo, hi in extremes:
            e = self._open[int(chunk.doc[seg[j]])].extremes[key]
            e[0], e[1] = np.minimum(e[0], lo), np.maximum(e[1], hi)
        if all_rows is not None:
            self.token_sink(chunk, nll_host, all_rows, keep)

    def _finish(self, d: int, o: _Open | None = None) -> DocResult:
        o = o if o is not None else self._open.pop(d)
        res = DocResult(d, float(np.sum(o.nll, dtype=np.float64)), int(o.nll.size), o.sums.value(),
                        o.counts, o.extremes)
        for stat in self.stats:
            res.extra.update(stat.finish_document(o.nll))
        if self.keep_tokens:
            res.token_nll = o.nll
        return res

    def _check_finite(self, values: np.ndarray, chunk: Chunk, meta, w: np.ndarray, what: str) -> None:
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not bad.any():
            return
        r = int(np.flatnonzero(bad)[0])
        d, k = meta[int(w[r])][0], meta[int(w[r])][1]
        name = self.doc_names[d] if self.doc_names else f"#{d}"
        if what == "logits" and np.isposinf(values.reshape(len(values), -1)[r]).all():
            raise UserError(f"the true token has probability 0 in document {name}, window {k} (token "
                            f"{int(chunk.position[r])}: its logit is -inf, e.g. masked), so its NLL is infinite")
        if what == "logits":
            raise UserError(f"non-finite logits in document {name}, window {k}; "
                            "the model overflowed in this dtype: try dtype: float32")
        raise UserError(f"non-finite statistic {what} in document {name}, window {k} "
                        f"(token {int(chunk.position[r])}); refusing to report it")
