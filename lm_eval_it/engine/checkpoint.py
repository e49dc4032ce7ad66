"""Checkpoints: finished documents survive a crash, and a resume gives identical numbers.

Each finished document's sufficient statistics (its NLL, token count, the
exact sums, counts and extremes of every statistic: a few KB, never per-token
arrays) are appended as one line to ``<run folder>/checkpoint.jsonl``, flushed
and fsynced. The first line records what the numbers depend on: the resolved
config (less the output section), the resolved device, the dataset
fingerprints and the package versions; each model adds its weights' and its
tokenizer's fingerprints when it loads, and each model × dataset the batch
size that ran. A resume whose inputs differ is refused, naming what changed.

Resuming replays the same global batch plan (with the recorded batch size) and
skips the batches whose documents are all done, so every number is computed by
the same kernels on the same shapes as in an uninterrupted run. Documents
scored only in part are kept as *parts* (:func:`encode_part`): under torchrun
as ``part`` lines, one per process's share; in one process as the snapshot of
the open documents (:mod:`lm_eval_it.engine.partial`).

Example::

    ck = Checkpoint(folder)
    ck.begin(header)                      # or raises UserError("... changed ...")
    ck.record("m", "d", doc_result)       # after a document is scored
    ck.done("m", "d")                     # {3: DocResult(...)}
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path

import numpy as np

from lm_eval_it.engine.execute import DocResult
from lm_eval_it.errors import UserError

LOG = "checkpoint.jsonl"


def run_header(cfg_dump: dict, dataset_prints: dict[str, str], versions: dict, device: str | None = None) -> dict:
    """Everything a run's numbers depend on, apart from the models (added as they load)."""
    numbers = {k: v for k, v in cfg_dump.items() if k != "output"}
    keep = ("torch", "transformers", "tokenizers", "lm_eval_it", "numpy")
    out = {
        "config_sha256": hashlib.sha256(json.dumps(numbers, sort_keys=True).encode()).hexdigest(),
        "config": numbers,
        "datasets": dataset_prints,
        "versions": {k: versions.get(k) for k in keep},
    }
    if device is not None:
        out["device"] = device
    return out


def _diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{k}.")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and all(isinstance(x, dict) for x in a + b):
            for i, (x, y) in enumerate(zip(a, b)):
                out += _diff(x, y, f"{prefix}{k}.{i}.")
        elif a != b:
            out.append(f"{prefix}{k} (was {a!r}, now {b!r})")
    return out


def _pack(a: np.ndarray) -> list:
    a = np.ascontiguousarray(a)
    return [str(a.dtype), list(a.shape), base64.b64encode(zlib.compress(a.tobytes(), 6)).decode()]


def _unpack(x: list) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(x[2])), dtype=x[0]).reshape(x[1]).copy()


def _pack_counts(c: np.ndarray) -> list:
    """A histogram as (index, count) pairs of its non-zero bins, in the narrowest integer types."""
    nz = np.flatnonzero(c)
    idx = nz.astype(np.uint16 if c.size <= 1 << 16 else np.uint32)
    vals = c.ravel()[nz]
    return [list(c.shape), _pack(idx), _pack(vals.astype(np.uint32 if vals.max(initial=0) < 1 << 32 else np.int64))]


def _unpack_counts(x: list) -> np.ndarray:
    out = np.zeros(int(np.prod(x[0], dtype=np.int64)), np.int64)
    out[_unpack(x[1]).astype(np.int64)] = _unpack(x[2])
    return out.reshape(x[0])


def encode_result(r: DocResult) -> dict:
    return {"nll": r.nll.hex(), "tokens": r.tokens, "sums": _pack(r.sums),
            "counts": {k: _pack_counts(v) for k, v in r.counts.items()},
            "extremes": {k: _pack(v) for k, v in r.extremes.items()},
            "extra": {k: float(v).hex() for k, v in r.extra.items()}}


def decode_result(doc: int, x: dict) -> DocResult:
    return DocResult(doc, float.fromhex(x["nll"]), x["tokens"], _unpack(x["sums"]),
                     {k: _unpack_counts(v) for k, v in x["counts"].items()},
                     {k: _unpack(v) for k, v in x["extremes"].items()},
                     {k: float.fromhex(v) for k, v in x["extra"].items()})


def encode_part(part: dict) -> dict:
    """A part of a document (:meth:`Accumulator.part`): exact sums (hex integers, zlib), counts, extremes, and the
    NLLs (float32) of the targets it covers, which are kept as runs ``[start, end, start, end, …]``."""
    cov = part["covered"]
    runs = np.flatnonzero(np.diff(np.r_[False, cov, False].astype(np.int8))).astype(np.int64)
    sums = base64.b64encode(zlib.compress(",".join(part["sums"]).encode(), 6)).decode()  # mostly zero bits
    return {"sums_z": sums, "runs": runs.tolist(), "size": int(cov.size), "nll": _pack(part["nll"][cov]),
            "counts": {k: _pack_counts(v) for k, v in part["counts"].items()},
            "extremes": {k: _pack(v) for k, v in part["extremes"].items()}}


def decode_part(x: dict) -> dict:
    cov = np.zeros(x["size"], bool)
    if "runs" in x:
        for a, b in zip(x["runs"][::2], x["runs"][1::2]):
            cov[a:b] = True
    else:  # parts recorded before runs: the covered targets' indices
        cov[_unpack(x["covered"])] = True
    nll = np.zeros(x["size"], np.float32)
    nll[cov] = _unpack(x["nll"])
    sums = zlib.decompress(base64.b64decode(x["sums_z"])).decode().split(",") if "sums_z" in x else x["sums"]
    return {"sums": sums, "covered": cov, "nll": nll,
            "counts": {k: _unpack_counts(v) for k, v in x["counts"].items()},
            "extremes": {k: _unpack(v) for k, v in x["extremes"].items()}}


class Checkpoint:
    """One process's checkpoint log in a run folder (rank 0: ``checkpoint.jsonl``)."""

    def __init__(self, folder: Path, rank: int = 0):
        self.folder = Path(folder)
        self.rank = rank
        self.log = self.folder / (LOG if rank == 0 else f"checkpoint.rank{rank}.jsonl")
        self._lines: list[dict] | None = None
        self._fh = None
        self.created: Path | None = None  # the outermost folder this run made (removed if nothing is kept)
        self.watch = None  # the open documents' snapshot (lm_eval_it.engine.partial.OpenDocs), written on interrupt

    def exists(self) -> bool:
        return self.log.is_file()

    @staticmethod
    def _read(path: Path) -> list[dict]:
        out = []
        if path.is_file():
            for raw in path.read_text().splitlines():
                try:
                    out.append(json.loads(raw))
                except json.JSONDecodeError:
                    break  # a torn last line from a crash: everything before it stands
        return out

    def lines(self) -> list[dict]:
        if self._lines is None:
            lines = self._read(self.log)
            self._lines = [x for x in lines if x.get("kind") not in ("doc", "part")]
            self._docs = sum(1 for x in lines if x.get("kind") == "doc")
        return self._lines

    def _append(self, entry: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._fh is None:
            self._fh = open(self.log, "a", encoding="utf-8")
        self._fh.write(json.dumps(entry, sort_keys=True) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        if entry.get("kind") in ("doc", "part"):
            self.lines()
            self._docs += entry["kind"] == "doc"
        else:
            self.lines().append(entry)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def mismatch(self, header: dict) -> list[str]:
        first = next((x for x in self._read(self.folder / LOG) if x.get("kind") == "header"), None)
        return [] if first is None else _diff(first["header"], header)

    def begin(self, header: dict) -> None:
        """Start a new log, or check an existing one against ``header``."""
        if not any(x.get("kind") == "header" for x in self.lines()):
            self._append({"kind": "header", "header": header})
            return
        changed = self.mismatch(header)
        if changed:
            raise UserError(f"cannot resume {self.folder}: {'; '.join(changed[:3])}"
                            f"{' and more' if len(changed) > 3 else ''} changed since it started")

    def model(self, name: str, fingerprint: str, tokenizer_fingerprint: str | None = None) -> None:
        """Record a model's fingerprints, or refuse a resume whose weights or tokenizer files changed."""
        seen = [x for x in self.lines() if x.get("kind") == "model" and x["name"] == name]
        if seen:
            old = seen[0]
            for what, was, now in (("weights", old["fingerprint"], fingerprint),
                                   ("tokenizer", old.get("tokenizer_fingerprint"), tokenizer_fingerprint)):
                if was != now:
                    raise UserError(f"cannot resume {self.folder}: model {name!r} {what} changed since it started "
                                    f"(fingerprint was {str(was)[:24]}…, now {str(now)[:24]}…)")
            return
        self._append({"kind": "model", "name": name, "fingerprint": fingerprint,
                      "tokenizer_fingerprint": tokenizer_fingerprint})

    def batch_size(self, model: str, dataset: str, resolved: int) -> int:
        """The batch size that ran for this model × dataset (recorded the first time; replayed on resume)."""
        seen = [x for x in self.lines() if x.get("kind") == "plan" and x["model"] == model
                and x["dataset"] == dataset]
        if seen:
            return int(seen[0]["batch_size"])
        self._append({"kind": "plan", "model": model, "dataset": dataset, "batch_size": int(resolved)})
        return int(resolved)

    def record(self, model: str, dataset: str, result: DocResult) -> None:
        """Persist one finished document (one fsynced line)."""
        self._append({"kind": "doc", "model": model, "dataset": dataset, "doc": result.doc, "rank": self.rank,
                      "result": encode_result(result)})

    def record_part(self, model: str, dataset: str, doc: int, part: dict) -> None:
        """Persist this process's share of a document that other processes also score (data parallelism).

        It holds the exact partial sums and the per-token NLLs of the targets it covers.
        """
        self._append({"kind": "part", "model": model, "dataset": dataset, "doc": doc, "rank": self.rank,
                      **encode_part(part)})

    def parts(self, model: str, dataset: str) -> list[tuple[int, dict]]:
        """Every process's recorded shares of documents, to merge."""
        return [(x["doc"], decode_part(x)) for log in sorted(self.folder.glob("checkpoint*.jsonl"))
                for x in self._read(log) if x.get("kind") == "part" and x["model"] == model
                and x["dataset"] == dataset]

    def done(self, model: str, dataset: str) -> dict[int, DocResult]:
        """Documents finished in any process's log."""
        out: dict[int, DocResult] = {}
        for log in sorted(self.folder.glob("checkpoint*.jsonl")):
            for x in self._read(log):
                if x.get("kind") == "doc" and x["model"] == model and x["dataset"] == dataset:
                    out.setdefault(x["doc"], decode_result(x["doc"], x["result"]))
        return out

    def count(self) -> int:
        self.lines()
        return self._docs

    def remove(self) -> None:
        """Delete every process's checkpoint (once the results are written)."""
        self.close()
        for log in [*self.folder.glob("checkpoint*.json*"), *self.folder.glob(".checkpoint*.tmp")]:
            log.unlink(missing_ok=True)
