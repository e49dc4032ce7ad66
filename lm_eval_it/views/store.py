"""The views file of one (model, dataset): the recorded documents' per-token values, and how they were chosen.

``views-<model>-<dataset>.npz`` holds, for each recorded document, its text and one row per scored
token: the byte offset and UTF-8 byte count of the token's text in the document, its NLL (nats), its
context length and, with a temperature sweep, its entropy at T = 1 (nats). ``meta`` says which documents
were recorded and why, and whether every document of the dataset was (``complete``): only then are
dataset-wide lists drawn from it "over the dataset".

Example::

    >>> v = DocView(doc=0, text="ab", start=np.array([0, 1]), length=np.array([1, 1]),
    ...             nll=np.array([0.7, 1.4]), context=np.array([1, 2]))
    >>> round(v.bits, 6), v.n_bytes
    (3.02966, 2)
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lm_eval_it.io import atomic_write_bytes

LN2 = math.log(2.0)
FORMAT = 1


@dataclass
class DocView:
    """One recorded document: its text and its scored tokens, in position order."""

    doc: int                    # the document's index in the dataset
    text: str                   # the document's text
    start: np.ndarray           # (n,) byte offset of each scored token's text in text.encode("utf-8")
    length: np.ndarray          # (n,) its UTF-8 bytes (0: a token with no text of its own)
    nll: np.ndarray             # (n,) NLL in nats
    context: np.ndarray         # (n,) context length (tokens before the target in its window)
    entropy: np.ndarray | None = None   # (n,) entropy at T = 1 in nats, with a sweep
    group: str | None = None
    aligned: bool = True        # False: the tokens' bytes do not reproduce the text (a lossy tokenizer)
    reasons: list[str] = field(default_factory=list)  # why it was recorded: "highest", "lowest", "named", ...
    total_bits: float | None = None   # the whole document's NLL in bits (None: that of the tokens here)
    total_bytes: int | None = None    # the whole document's scored UTF-8 bytes (None: those of ``text``)
    cut: bool = False           # only the drawn part is kept: ``text`` and the tokens that start in it

    @property
    def n_bytes(self) -> int:
        return len(self.text.encode("utf-8"))

    @property
    def bits(self) -> float:
        """Total NLL of the scored tokens in bits (summed in float64)."""
        return float(np.sum(self.nll, dtype=np.float64)) / LN2

    @property
    def bits_per_byte(self) -> float:
        """The whole document's bits per byte (of the tokens here when no totals are given)."""
        bits = self.bits if self.total_bits is None else self.total_bits
        n = self.n_bytes if self.total_bytes is None else self.total_bytes
        return bits / n if n else float("nan")


@dataclass
class ViewSet:
    """The views file of one (model, dataset)."""

    model: str
    dataset: str
    docs: dict[int, DocView]
    complete: bool              # every document of the dataset is recorded, whole
    dataset_docs: int           # documents in the dataset
    tokenizer: str = ""         # the tokenizer's fingerprint
    dataset_fingerprint: str = ""

    def meta(self) -> dict:
        return {"format": FORMAT, "model": self.model, "dataset": self.dataset, "complete": self.complete,
                "dataset_docs": self.dataset_docs, "tokenizer": self.tokenizer,
                "dataset_fingerprint": self.dataset_fingerprint,
                "documents": [{"doc": v.doc, "tokens": len(v.nll), "group": v.group, "aligned": v.aligned,
                               "reasons": v.reasons, "bits_per_byte": v.bits_per_byte, "total_bits": v.total_bits,
                               "total_bytes": v.total_bytes, "cut": v.cut} for v in self.docs.values()]}


def save(path: Path, views: ViewSet) -> None:
    """Write the views file atomically (one ``.npz``: concatenated token arrays, texts and meta as JSON)."""
    docs = list(views.docs.values())
    cat = lambda name, dtype: (np.concatenate([np.asarray(getattr(v, name), dtype) for v in docs])  # noqa: E731
                               if docs else np.zeros(0, dtype))
    arrays = {"start": cat("start", np.int64), "length": cat("length", np.int32), "nll": cat("nll", np.float32),
              "context": cat("context", np.int32), "counts": np.array([len(v.nll) for v in docs], np.int64)}
    if docs and all(v.entropy is not None for v in docs):
        arrays["entropy"] = cat("entropy", np.float32)
    arrays["texts"] = np.frombuffer(json.dumps([v.text for v in docs]).encode("utf-8"), np.uint8)
    arrays["meta"] = np.frombuffer(json.dumps(views.meta()).encode("utf-8"), np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def load(path: Path) -> ViewSet:
    """Read a views file written by :func:`save`."""
    with np.load(Path(path)) as z:
        meta = json.loads(bytes(z["meta"]).decode("utf-8"))
        texts = json.loads(bytes(z["texts"]).decode("utf-8"))
        bounds = np.r_[0, np.cumsum(z["counts"])]
        arr = {k: z[k] for k in ("start", "length", "nll", "context", "entropy") if k in z.files}
    docs = {}
    for i, (d, text) in enumerate(zip(meta["documents"], texts)):
        a, b = int(bounds[i]), int(bounds[i + 1])
        docs[d["doc"]] = DocView(d["doc"], text, arr["start"][a:b], arr["length"][a:b],
                                 arr["nll"][a:b].astype(np.float64), arr["context"][a:b],
                                 arr["entropy"][a:b].astype(np.float64) if "entropy" in arr else None,
                                 d.get("group"), d.get("aligned", True), list(d.get("reasons", [])),
                                 d.get("total_bits"), d.get("total_bytes"), d.get("cut", False))
    return ViewSet(meta["model"], meta["dataset"], docs, meta["complete"], meta["dataset_docs"],
                   meta.get("tokenizer", ""), meta.get("dataset_fingerprint", ""))
