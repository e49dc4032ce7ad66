"""The plug-in contract: per-token statistics, the exact accumulators they reduce into, and :class:`Plugin`.

A statistic sees each chunk of scored positions once — float32 logits, targets,
which document and window every row belongs to, the row's context length — and
turns it at once into per-row values of a few declared *fields*:

* :class:`Sum` — a float per row (or a small fixed-shape vector), summed;
* :class:`Count` — an integer bin index per row, counted into a fixed-bin histogram;
* :class:`Extreme` — a float per row whose minimum and maximum are kept.

The executor reduces those rows straight away into per-document sufficient
statistics (nothing per token survives the batch) and the statistic's pure
``summarize`` turns the dataset totals into the reported numbers.

A :class:`Plugin` wraps a statistic (or an analysis of per-document results) for the
runner and the reports: its config keys, what it needs from a backend, its results
block, its report sections; :mod:`lm_eval_it.stats.registry` lists them.

Sums are **order-free**: each segment of rows (one window's rows in one chunk)
is summed in float64 and added to the document as an exact rational, so a
document's and a dataset's totals do not depend on batch order, resumes or
how many processes took part.

Example::

    >>> acc = ExactSum(2)
    >>> acc.add(np.array([0.1, 1e16])); acc.add(np.array([0.2, 1.0])); acc.add(np.array([0.3, -1e16]))
    >>> acc.value().tolist()            # exact, then rounded once: no 0.1 + 0.2 + 0.3 drift, no 1e16 cancellation
    [0.6, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from lm_eval_it.backends.base import unmet
from lm_eval_it.errors import UserError


@dataclass(frozen=True)
class Chunk:
    """Scored positions of one batch, a slice at a time (rows follow the batch's windows in order)."""

    logits: torch.Tensor  # (rows, vocab) float32, on the scoring device
    targets: torch.Tensor  # (rows,) int64, on the scoring device
    nll: torch.Tensor  # (rows,) float32 nats: −log softmax(logits)[target], computed once for every statistic
    doc: np.ndarray  # (rows,) document index of each row
    position: np.ndarray  # (rows,) index of the target within its document (0 = first scored token)
    context: np.ndarray  # (rows,) context length: input tokens the model saw for this prediction
    segments: np.ndarray  # start row of each (document, window) run of rows, ascending, first = 0
    target_bytes: np.ndarray  # (rows,) UTF-8 bytes of each target token
    reference: torch.Tensor | None = None  # (rows, vocab) float32 logits of a reference model, same positions


@dataclass(frozen=True)
class Sum:
    name: str
    shape: tuple = ()
    per_document: bool = False  # also keep each document's value (for intervals over documents)


@dataclass(frozen=True)
class Count:
    name: str
    shape: tuple = ()  # one histogram per element of shape
    bins: int = 1


@dataclass(frozen=True)
class Extreme:
    name: str
    shape: tuple = ()


class Statistic:
    """Base class: override ``fields``, ``rows`` and ``summarize`` (and ``finish_document`` if needed)."""

    name = "statistic"

    def fields(self) -> list:
        return []

    def rows(self, chunk: Chunk) -> dict[str, torch.Tensor | np.ndarray]:
        """Per-row values for each declared field: float rows for Sum/Extreme, int bins for Count."""
        return {}

    def finish_document(self, token_nll: np.ndarray) -> dict[str, float]:
        """Per-document scalars from the document's per-token NLLs (held only until it completes)."""
        return {}

    def summarize(self, totals: dict[str, np.ndarray], context: dict) -> dict | None:
        return None

    def columns(self, rows: dict, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Per-token output columns (``output.per_token``) from this statistic's ``rows`` of one chunk, ``mask``ed."""
        return {}


class ExactSum:
    """Order-free float sums: each added float64 is accumulated exactly (as an integer multiple of 2**-1074)."""

    SCALE = 1074

    def __init__(self, size: int):
        self.acc = [0] * size

    def add(self, values: np.ndarray) -> None:
        for i, v in enumerate(np.asarray(values, dtype=np.float64).ravel().tolist()):
            if v:
                n, d = v.as_integer_ratio()
                self.acc[i] += n << (self.SCALE - d.bit_length() + 1)

    def merge(self, other: "ExactSum") -> None:
        self.acc = [a + b for a, b in zip(self.acc, other.acc)]

    def value(self) -> np.ndarray:
        return np.array([float(Fraction(a, 1 << self.SCALE)) for a in self.acc], dtype=np.float64)

    def to_json(self) -> list[str]:
        return [format(a, "x") for a in self.acc]

    @classmethod
    def from_json(cls, items: list[str]) -> "ExactSum":
        out = cls(len(items))
        out.acc = [int(x, 16) for x in items]
        return out


@dataclass
class Layout:
    """Where each field lives in a document's accumulators: sums in one ExactSum, counts and extremes apart."""

    sums: dict[str, tuple[slice, tuple]] = field(default_factory=dict)
    per_document: list[str] = field(default_factory=list)
    counts: dict[str, tuple] = field(default_factory=dict)  # name -> (shape + (bins,))
    extremes: dict[str, tuple] = field(default_factory=dict)
    size: int = 0

    @classmethod
    def of(cls, statistics: list[Statistic]) -> "Layout":
        out = cls()
        for stat in statistics:
            for f in stat.fields():
                key = f"{stat.name}.{f.name}"
                if isinstance(f, Sum):
                    n = int(np.prod(f.shape, dtype=np.int64))
                    out.sums[key] = (slice(out.size, out.size + n), f.shape)
                    if f.per_document:
                        out.per_document.append(key)
                    out.size += n
                elif isinstance(f, Count):
                    out.counts[key] = tuple(f.shape) + (f.bins,)
                elif isinstance(f, Extreme):
                    out.extremes[key] = tuple(f.shape)
        return out

    def empty(self) -> tuple["ExactSum", dict, dict]:
        """Zeroed accumulators for this layout: exact sums, counts, extremes (min = +inf, max = -inf)."""
        return (ExactSum(self.size), {k: np.zeros(s, np.int64) for k, s in self.counts.items()},
                {k: np.stack([np.full(s, np.inf), np.full(s, -np.inf)]) for k, s in self.extremes.items()})


def fold(counts: dict, extremes: dict, other_counts: dict, other_extremes: dict) -> None:
    """Add ``other_counts`` into ``counts`` and widen ``extremes`` by ``other_extremes``, in place (order-free)."""
    for k, v in other_counts.items():
        counts[k] += v
    for k, v in other_extremes.items():
        extremes[k][0] = np.minimum(extremes[k][0], v[0])
        extremes[k][1] = np.maximum(extremes[k][1], v[1])


# ----------------------------------------------------------------------------- the plug-in contract

@dataclass(frozen=True)
class Setup:
    """What a plug-in may read when a run builds it, per model × dataset."""

    eval: object  # config.eval.EvalConfig: a plug-in reads only the keys it names in ``config_keys``
    vocab: int  # vocabulary size (logit columns)
    window: int  # the window protocol that ran
    stride: int
    reference: bool = False  # a reference model scores the same chunks (KL)
    reference_name: str | None = None
    protocol: object | None = None  # engine.protocol.Protocol that ran (None before prepare)


@dataclass
class Scored:
    """What a plug-in builds its results block from, once a model × dataset is reduced."""

    summary: dict | None  # its per-token statistic's summary (``None``: it has none, or nothing was scored)
    metrics: dict  # the dataset's metrics (stats.metrics)
    per_document: list[dict]  # one row per document (a plug-in may add its per-document fields)
    compression: dict | None = None  # prepare's whole-dataset compressed sizes
    zlib_bits: np.ndarray | None = None  # per document zlib -9 bits
    heads: list[str] = field(default_factory=list)  # each document's first characters
    groups: list[str] | None = None  # each document's group label, if the dataset has groups


class Plugin:
    """One statistic or dataset analysis, as the runner and the reports see it (:mod:`lm_eval_it.stats.registry`).

    Run side (an instance per model × dataset, from :meth:`build`): ``statistic`` (its per-token
    :class:`Statistic`, or ``None`` for an analysis of per-document results), :meth:`summarize`
    (which may ask for ``extra_passes``) and :meth:`block`. Report side (class methods: they read
    result rows only, so ``compare`` works on old runs): :meth:`markdown`, :meth:`terminal`,
    :meth:`html`, :meth:`compare`. ``order`` places its sections in each output.
    """

    name = "plugin"
    keys: tuple[str, ...] = ()  # the result-row keys it writes; ``None`` when it did not run
    config_keys: tuple[str, ...] = ()  # the ``eval.*`` fields it reads
    needs: frozenset = frozenset()  # lm_eval_it.backends.base.Capability values
    order = {"markdown": 100, "html": 100, "terminal": 100}
    statistic: Statistic | None = None
    extra_passes = False  # True: summarize wants ``context["extra_passes"](statistic, totals)`` (more scoring)
    compare_columns: tuple[tuple[str, str, str], ...] = ()  # (key, header, format) of what ``compare`` adds:
    # the comparison shows them as a detail table (comparison.md/html and summary.md)

    @classmethod
    def build(cls, setup: Setup) -> "Plugin | None":
        """The plug-in for this run, or ``None`` when the config does not enable it."""
        return cls()

    def summarize(self, totals: dict, context: dict) -> dict | None:
        return self.statistic.summarize(totals, context) if self.statistic is not None else None

    def block(self, scored: Scored) -> dict:
        """Its result-row keys and values (``keys``)."""
        return {k: scored.summary for k in self.keys}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        """Its summary.md sections ('' when no row has its block)."""
        return ""

    @classmethod
    def terminal(cls, rows: list[dict]) -> str:
        """Its ``--details`` sections: the short form ('' when none)."""
        return ""

    @classmethod
    def html(cls, results: dict) -> list[tuple[str, list[dict]]]:
        """report.html sections: (title, blocks); a block is ``{"h3"}``, ``{"table"}``, ``{"note"}``, ``{"p"}``,
        ``{"meta"}`` or ``{"plot": name, "args": [...], "alt"}`` (the report draws the named plot)."""
        return []

    @classmethod
    def compare(cls, row: dict, base: dict) -> dict:
        """Fields it adds to a model's comparison entry against the baseline row ``base``."""
        return {}


def check_needs(plugins, backend: str, capabilities) -> None:
    """Refuse, in one line, a statistic whose needs the backend cannot meet (before anything runs).

    >>> class P(Plugin):
    ...     name, needs = "ranks", frozenset({"full_logits"})
    >>> check_needs([P()], "server", {"target_logprobs"})
    Traceback (most recent call last):
    ...
    lm_eval_it.errors.UserError: statistic 'ranks' needs full_logits, which backend 'server' does not give (it gives target_logprobs)
    """
    missing = unmet({p.name: p.needs for p in plugins}, capabilities, backend)
    if missing:
        raise UserError(missing)
