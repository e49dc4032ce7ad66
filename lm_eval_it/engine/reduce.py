"""Summarize: per-document sufficient statistics → dataset totals → reported numbers (pure numpy).

:class:`Reduction` folds finished documents in, in any order: the exact sums
make the totals independent of the order (and of resumes and process counts).
It keeps, per document, only the few numbers the intervals over documents and the
per-document table need; every statistic's totals are then handed to that
statistic's own pure ``summarize``.

Example::

    red = Reduction(layout, prepared)
    for result in results:
        red.add(result)
    red.metrics()          # bits per byte, perplexity, ... from summed totals
"""

from __future__ import annotations

import numpy as np

from lm_eval_it.engine.execute import DocResult
from lm_eval_it.engine.prepare import Prepared
from lm_eval_it.stats.base import ExactSum, Layout, Statistic, fold
from lm_eval_it.stats.intervals import metric_intervals
from lm_eval_it.stats.metrics import Totals, summarize


class Reduction:
    """Dataset totals of one model × dataset, built from finished documents."""

    def __init__(self, layout: Layout, prepared: Prepared):
        self.layout = layout
        self.p = prepared
        self.sums, self.counts, self.extremes = layout.empty()
        self.rows: dict[int, dict] = {}
        self.doc_arrays: dict[str, dict[int, np.ndarray]] = {k: {} for k in layout.per_document}

    def add(self, r: DocResult) -> None:
        if r.doc in self.rows:
            return
        self.sums.add(r.sums)
        fold(self.counts, self.extremes, r.counts, r.extremes)
        d = r.doc
        for key in self.layout.per_document:
            sl, shape = self.layout.sums[key]
            self.doc_arrays[key][d] = r.sums[sl].reshape(shape).copy()  # not a view of the whole vector
        self.rows[d] = {"index": d, "nll": r.nll, "tokens": r.tokens, "bytes": int(self.p.bytes[d]),
                        "words": int(self.p.words[d]), "chars": int(self.p.chars[d]), **r.extra}

    def export(self) -> dict:
        """This reduction as plain data (no prepared inputs), for :meth:`merge` in another process."""
        return {"sums": self.sums.to_json(), "counts": self.counts, "extremes": self.extremes, "rows": self.rows,
                "doc_arrays": self.doc_arrays}

    def merge(self, other: dict) -> None:
        """Fold in another process's :meth:`export` (documents it finished whole); exact, so order-free.

        A document already here is not added twice (every document is finished on exactly one rank).
        """
        dup = set(other["rows"]) & set(self.rows)
        if dup:
            raise ValueError(f"documents reduced on two ranks: {sorted(dup)[:5]}")
        self.sums.merge(ExactSum.from_json(other["sums"]))
        fold(self.counts, self.extremes, other["counts"], other["extremes"])
        for k, arrays in other["doc_arrays"].items():
            self.doc_arrays[k].update(arrays)
        self.rows.update(other["rows"])

    def per_doc_arrays(self, key: str, docs: list[int]) -> np.ndarray:
        """One per-document field stacked over ``docs``: shape (docs, *field shape)."""
        shape = self.layout.sums[key][1]
        arrays = self.doc_arrays[key]
        return np.stack([arrays[d] for d in docs]) if docs else np.zeros((0, *shape))

    def per_document(self) -> list[dict]:
        return [self.rows[d] for d in sorted(self.rows)]

    def totals(self) -> Totals:
        t = Totals()
        for row in self.per_document():
            t = t + Totals(nll=row["nll"], tokens=row["tokens"], bytes=row["bytes"], words=row["words"],
                           chars=row["chars"], docs=1)
        return t

    def of(self, stat: Statistic) -> dict[str, np.ndarray]:
        """The dataset totals of one statistic's fields, by field name, in their declared shapes."""
        values = self.sums.value()
        out: dict[str, np.ndarray] = {}
        prefix = stat.name + "."
        for key, (sl, shape) in self.layout.sums.items():
            if key.startswith(prefix):
                out[key[len(prefix):]] = values[sl].reshape(shape) if shape else values[sl][0]
        for key, c in self.counts.items():
            if key.startswith(prefix):
                out[key[len(prefix):]] = c
        return out

    def extremes_of(self, stat: Statistic) -> dict[str, tuple[float, float]]:
        prefix = stat.name + "."
        return {k[len(prefix):]: (float(np.min(v[0])), float(np.max(v[1])))
                for k, v in self.extremes.items() if k.startswith(prefix)}


def dataset_metrics(red: Reduction) -> tuple[dict, dict, list[dict]]:
    """Metrics from summed totals, their intervals over documents, and the per-document rows."""
    rows = red.per_document()
    return summarize(red.totals()), metric_intervals(rows), rows
