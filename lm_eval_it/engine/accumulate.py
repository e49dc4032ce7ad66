"""Per-document accumulators of the execute step: chunks of per-row statistics, reduced at once.

A document is *open* while its windows are being scored: it holds exact partial
sums, histogram counts, extremes, its per-token NLLs so far and which of its
targets are covered. :meth:`Accumulator.collect` reduces one chunk's rows to
per-document-segment sums without touching any document (so a batch that runs
out of memory leaves nothing behind); :meth:`Accumulator.apply` then adds them.
When every target of a document is covered it becomes a :class:`DocResult` of a
few numbers and the per-token arrays are dropped. Under data parallelism a
document scored partly here is handed on as a *part* and merged where the rest
of it arrives (:meth:`Accumulator.merge_part`).

Example::

    acc = Accumulator(targets=np.array([3]), layout=Layout.of(stats), stats=stats)
    update = acc.collect(chunk, rows, nll_host, w, meta, done=set())   # pure: a Collected
    acc.apply(update)                                                   # the batch succeeded
    result = acc.finish(0)                                              # DocResult
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import Chunk, Count, ExactSum, Layout, Statistic, Sum, fold


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


class Span(NamedTuple):
    """The targets one window of a batch scores: ``count`` of them from ``position``, at input ``column`` on."""

    doc: int
    index: int  # the window's index within its document
    position: int  # the first scored target's index in the document
    count: int
    column: int  # the input position predicting it (a per-window prefix included)


@dataclass
class Collected:
    """One chunk reduced per document segment by :meth:`Accumulator.collect`, not yet added to any document."""

    chunk: Chunk  # the chunk on the host (doc, position, segments; with host rows also targets, context, bytes)
    nll: np.ndarray  # (rows,) float32 NLL per target
    sums: np.ndarray  # (segments, layout.size) float64 sums per segment
    counts: list  # (segment, key, histogram) for kept segments
    extremes: list  # (segment, key, min, max) for kept segments
    keep: np.ndarray  # (segments,) bool: the segment is added (its document is not done, its targets not restored)
    rows: dict | None = None  # every statistic's rows on the host (host_rows: per-token output)


@dataclass
class OpenDoc:
    """A document being scored: exact partial sums and its per-token NLLs so far."""

    sums: ExactSum
    counts: dict
    extremes: dict
    nll: np.ndarray
    covered: np.ndarray


class Accumulator:
    def __init__(self, targets: np.ndarray, layout: Layout, stats: list[Statistic], keep_tokens: bool = False,
                 doc_names: list[str] | None = None):
        self.targets = targets  # scored tokens per document
        self.layout = layout
        self.stats = stats
        self.keep_tokens = keep_tokens
        self.doc_names = doc_names
        self.open: dict[int, OpenDoc] = {}

    def new(self, d: int) -> OpenDoc:
        n = int(self.targets[d])
        return OpenDoc(*self.layout.empty(), np.zeros(n, np.float32), np.zeros(n, bool))

    def covered(self, d: int, position: int) -> bool:
        """Target ``position`` of document ``d`` is already added (restored from a snapshot)."""
        o = self.open.get(d)
        return o is not None and bool(o.covered[position])

    # ------------------------------------------------------------------ one chunk

    def collect(self, chunk: Chunk, stat_rows: dict, nll_host: np.ndarray, w: np.ndarray, meta: list[Span], done,
                host_rows: bool) -> Collected:
        """Reduce one chunk's statistic rows to per-segment sums, counts and extremes (not yet added to any
        document). With ``host_rows`` the rows come back on the host too, for per-token output."""
        seg = chunk.segments
        keep = np.array([int(d) not in done and not self.covered(int(d), int(t))  # restored windows: once
                         for d, t in zip(chunk.doc[seg], chunk.position[seg])])
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
                    self.check_finite(v, chunk, meta, w, key)
                if isinstance(f, Sum):
                    vec[:, self.layout.sums[key][0]] = np.add.reduceat(v, seg, axis=0)
                else:
                    shape = self.layout.extremes[key]
                    extremes += [(j, key, v[bounds[j] : bounds[j + 1]].min(0).reshape(shape),
                                  v[bounds[j] : bounds[j + 1]].max(0).reshape(shape)) for j in range(len(seg)) if keep[j]]
            all_rows[stat.name] = rows
        if host_rows:
            all_rows = {k: {f: (x.detach().cpu() if isinstance(x, torch.Tensor) else x) for f, x in r.items()}
                        for k, r in all_rows.items()}
            host = Chunk(None, chunk.targets.cpu(), None, chunk.doc, chunk.position, chunk.context, seg,
                         chunk.target_bytes)
            return Collected(host, nll_host, vec, counts, extremes, keep, all_rows)
        return Collected(Chunk(None, None, None, chunk.doc, chunk.position, None, seg, None), nll_host, vec, counts,
                         extremes, keep)

    def apply(self, update: Collected) -> None:
        """Add one collected chunk to its documents (opening them as needed)."""
        chunk, nll_host, vec, keep = update.chunk, update.nll, update.sums, update.keep
        seg = chunk.segments
        bounds = list(seg) + [len(chunk.doc)]
        for j in range(len(seg)):
            if not keep[j]:
                continue
            d = int(chunk.doc[seg[j]])
            o = self.open.get(d) or self.open.setdefault(d, self.new(d))
            o.sums.add(vec[j])
            pos = chunk.position[bounds[j] : bounds[j + 1]]
            o.nll[pos] = nll_host[bounds[j] : bounds[j + 1]]
            o.covered[pos] = True
        for j, key, c in update.counts:
            self.open[int(chunk.doc[seg[j]])].counts[key] += c
        for j, key, lo, hi in update.extremes:
            e = self.open[int(chunk.doc[seg[j]])].extremes[key]
            e[0], e[1] = np.minimum(e[0], lo), np.maximum(e[1], hi)

    def finish(self, d: int, o: OpenDoc | None = None) -> DocResult:
        """Close document ``d``: its sums rounded once, its per-document statistics, its NLL in text order."""
        o = o if o is not None else self.open.pop(d)
        res = DocResult(d, float(np.sum(o.nll, dtype=np.float64)), int(o.nll.size), o.sums.value(),
                        o.counts, o.extremes)
        for stat in self.stats:
            res.extra.update(stat.finish_document(o.nll))
        if self.keep_tokens:
            res.token_nll = o.nll
        return res

    # ------------------------------------------------------------------ parts (data parallelism)

    def partial(self) -> list[tuple[int, dict]]:
        """Documents only partly scored here: their parts, to merge on rank 0."""
        return [(d, self.part(o)) for d, o in self.open.items()]

    @staticmethod
    def part(o: OpenDoc) -> dict:
        return {"sums": o.sums.to_json(), "counts": o.counts, "extremes": o.extremes, "nll": o.nll,
                "covered": o.covered}

    def merge_part(self, d: int, part: dict) -> DocResult | None:
        """Add another process's part of document ``d``; the finished document once it is whole."""
        o = self.open.get(d) or self.open.setdefault(d, self.new(d))
        o.sums.merge(ExactSum.from_json(part["sums"]))
        fold(o.counts, o.extremes, part["counts"], part["extremes"])
        take = part["covered"] & ~o.covered
        o.nll[take] = part["nll"][take]
        o.covered |= part["covered"]
        return self.finish(d) if o.covered.all() else None

    def complete_from_parts(self, parts: list[tuple[int, dict]]) -> list[DocResult]:
        """Documents made whole by merging parts (from checkpoints); incomplete ones are forgotten."""
        out = [r for d, part in parts if (r := self.merge_part(d, part)) is not None]
        self.open.clear()
        return out

    # ------------------------------------------------------------------ errors

    def check_finite(self, values: np.ndarray, chunk: Chunk, meta: list[Span], w: np.ndarray, what: str) -> None:
        """A one-line error naming document, window and token for the first non-finite row, if any."""
        bad = ~np.isfinite(values.reshape(len(values), -1)).all(axis=1)
        if not bad.any():
            return
        r = int(np.flatnonzero(bad)[0])
        d, k = meta[int(w[r])].doc, meta[int(w[r])].index
        name = self.doc_names[d] if self.doc_names else f"#{d}"
        if what == "logits" and np.isposinf(values.reshape(len(values), -1)[r]).all():
            raise UserError(f"the true token has probability 0 in document {name}, window {k} (token "
                            f"{int(chunk.position[r])}: its logit is -inf, e.g. masked), so its NLL is infinite")
        if what == "logits":
            raise UserError(f"non-finite logits in document {name}, window {k}; "
                            "the model overflowed in this dtype: try dtype: float32")
        raise UserError(f"non-finite statistic {what} in document {name}, window {k} "
                        f"(token {int(chunk.position[r])}); refusing to report it")
