"""Partly scored documents survive an interrupt: a snapshot of the open documents, resumed exactly.

Batches mix documents (windows are sorted by length over the whole dataset), so
most documents stay open until late in a run. Their exact parts (sums, counts,
extremes and the float32 NLLs of the targets they cover: the same parts that
data parallelism merges, :func:`lm_eval_it.engine.checkpoint.encode_part`) are written
to ``<run folder>/checkpoint.open.json`` on Ctrl-C and after a batch once
:data:`SNAPSHOT_SECONDS` have passed (or 20 times what the last snapshot took,
if more), replaced atomically, so the file holds only the current open
documents. A part costs about 5.3 bytes per covered target (float32 NLLs,
zlib, base64) plus its exact sums (a few hundred bytes per summed field).

A resume reopens those documents and skips the windows they cover (a batch
whose windows are all done or covered is not run; a batch with some is run on
the same shapes, the covered windows dropped), so every number is identical to
an uninterrupted run. Under torchrun nothing is snapshot or restored: parts
are recorded per process as each finishes its share (:mod:`lm_eval_it.engine.checkpoint`).

Example::

    ex = Executor(prepared, scorer, stats, 4, **part_hooks(ck, "m", "d", Context()))   # on_part / on_batch
    resume_parts(ex, ck, "m", "d", Context(), done)   # folds parts into done / ex; the snapshot follows ex
    for r in ex.run(set(done)): ...                   # ck.watch.write() on Ctrl-C
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from lm_eval_it.engine.checkpoint import Checkpoint, decode_part, encode_part
from lm_eval_it.io import atomic_write_text

log = logging.getLogger(__name__)

SNAPSHOT = "checkpoint.open.json"
SNAPSHOT_SECONDS = 60.0
FORMAT = 1


def read_snapshot(folder: Path) -> dict | None:
    """The snapshot in ``folder``, or ``None`` (none, or one this version cannot read: those windows are rescored)."""
    path = Path(folder) / SNAPSHOT
    if not path.is_file():
        return None
    try:
        snap = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        snap = None
    if not isinstance(snap, dict) or snap.get("format") != FORMAT:
        log.warning("%s: a snapshot this version cannot read; its partly scored documents are scored again", path)
        return None
    return snap


def count_open(folder: Path) -> int:
    """How many partly scored documents ``folder``'s snapshot holds."""
    snap = read_snapshot(folder)
    return len(snap["docs"]) if snap else 0


def open_parts(folder: Path, model: str, dataset: str) -> list[tuple[int, dict]]:
    """The snapshot's parts for one model × dataset."""
    snap = read_snapshot(folder)
    if not snap or snap["model"] != model or snap["dataset"] != dataset:
        return []
    return [(int(d), decode_part(x)) for d, x in snap["docs"].items()]


class OpenDocs:
    """Writes one executor's open documents to the snapshot: on :meth:`tick` (after a batch) when due, or now.

    The executor is the one it :meth:`follow`-s (it is made with the executor's hooks, before the executor).
    """

    def __init__(self, folder: Path, model: str, dataset: str, executor=None):
        self.path = Path(folder) / SNAPSHOT
        self.model, self.dataset, self.ex = model, dataset, executor
        self.last, self.cost = time.monotonic(), 0.0

    def follow(self, executor) -> None:
        """Snapshot ``executor``'s open documents from now on."""
        self.ex = executor

    def tick(self) -> None:
        if time.monotonic() - self.last >= max(SNAPSHOT_SECONDS, 20 * self.cost):
            self.write()

    def write(self) -> bool:
        """Replace the snapshot with the open documents; ``False`` when a batch is half added (the last stands)
        or no executor is followed yet."""
        parts = None if self.ex is None else self.ex.snapshot()
        if parts is None:
            return False
        t0 = time.monotonic()
        docs = {str(d): encode_part(part) for d, part in parts}
        atomic_write_text(self.path, json.dumps({"format": FORMAT, "model": self.model, "dataset": self.dataset,
                                                 "docs": docs}, sort_keys=True))
        self.last = time.monotonic()
        self.cost = self.last - t0
        return True


def part_hooks(ck: Checkpoint | None, model: str, dataset: str, ctx) -> dict:
    """The executor's keyword arguments that keep parts of documents: under torchrun each process records its
    shares as it finishes them (``on_part``); in one process the open documents are snapshot after batches
    (``on_batch``; ``ck.watch`` also writes on interrupt). None without a checkpoint."""
    if ck is None:
        return {}
    if ctx.active:
        return {"on_part": lambda d, part: ck.record_part(model, dataset, d, part)}
    ck.watch = OpenDocs(ck.folder, model, dataset)
    return {"on_batch": ck.watch.tick}


def resume_parts(ex, ck: Checkpoint, model: str, dataset: str, ctx, done: dict) -> None:
    """Fold the checkpoint's parts of documents into ``done`` (whole ones) and ``ex`` (open ones, one process);
    the snapshot (:func:`part_hooks`) follows ``ex`` from here."""
    if ctx.main:  # documents that several processes shared, whole once their parts merge
        for r in ex.complete_from_parts(ck.parts(model, dataset)):
            done.setdefault(r.doc, r)
    if ctx.active:
        if ex.on_part is None:
            raise ValueError(f"make the executor of {model} × {dataset} with part_hooks(ck, ...) first")
        return
    for r in ex.restore([(d, p) for d, p in open_parts(ck.folder, model, dataset) if d not in done]):
        done.setdefault(r.doc, r)
    watch = ck.watch
    if watch is None or (watch.model, watch.dataset) != (model, dataset):
        raise ValueError(f"make the executor of {model} × {dataset} with part_hooks(ck, ...) first")
    watch.follow(ex)
