"""Checkpoints: finished documents survive a crash, and a resume gives identical numbers.

While a run scores, every finished document's per-token arrays go to
``<run folder>/checkpoint/<model>.<dataset>.<doc>.npz`` (written to a temporary
file, fsynced, renamed) and a line is appended, fsynced, to
``checkpoint.jsonl``. The first line of that log records what the numbers depend
on: the resolved config (less the output section), the dataset fingerprints and
the package versions; each model adds its fingerprint when it loads. A resume
whose inputs differ is refused, naming what changed.

Resuming replays the same global batch plan and skips the batches whose
documents are all checkpointed, so every number is computed by the same kernels
on the same shapes as in an uninterrupted run: the results are identical.

Example::

    ck = Checkpoint(folder)
    ck.begin(header)                    # or raises UserError("... changed ...")
    ck.record("m", "d", 3, doc_score)   # after document 3 is scored
    ck.done("m", "d")                   # {3: DocScore(...)}
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import UserError
from .scoring import DocScore

LOG = "checkpoint.jsonl"
ARRAYS = "checkpoint"


def run_header(cfg_dump: dict, dataset_prints: dict[str, str], versions: dict) -> dict:
    """Everything a run's numbers depend on, apart from the models (added as they load)."""
    numbers = {k: v for k, v in cfg_dump.items() if k != "output"}
    keep = ("torch", "transformers", "tokenizers", "lm_eval_it", "numpy")
    return {
        "config_sha256": hashlib.sha256(json.dumps(numbers, sort_keys=True).encode()).hexdigest(),
        "config": numbers,
        "datasets": dataset_prints,
        "versions": {k: versions.get(k) for k in keep},
    }


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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Checkpoint:
    """One process's checkpoint log in a run folder (rank 0: ``checkpoint.jsonl``)."""

    def __init__(self, folder: Path, rank: int = 0):
        self.folder = Path(folder)
        self.rank = rank
        self.log = self.folder / (LOG if rank == 0 else f"checkpoint.rank{rank}.jsonl")
        self.arrays = self.folder / ARRAYS
        self._lines: list[dict] | None = None

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
            self._lines = self._read(self.log)
        return self._lines

    def _append(self, entry: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.lines().append(entry)

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

    def model(self, name: str, fingerprint: str) -> None:
        seen = [x for x in self.lines() if x.get("kind") == "model" and x["name"] == name]
        if seen and seen[0]["fingerprint"] != fingerprint:
            raise UserError(f"cannot resume {self.folder}: model {name!r} changed since it started "
                            f"(fingerprint was {seen[0]['fingerprint'][:24]}…, now {fingerprint[:24]}…)")
        if not seen:
            self._append({"kind": "model", "name": name, "fingerprint": fingerprint})

    def _file(self, model: str, dataset: str, doc: int, rank: int) -> Path:
        key = hashlib.sha256(f"{model}\0{dataset}".encode()).hexdigest()[:16]
        return self.arrays / f"{key}.{doc}.r{rank}.npz"

    def record(self, model: str, dataset: str, doc: int, score: DocScore) -> None:
        """Persist this process's part of a document (the whole of it in a single process)."""
        self.arrays.mkdir(parents=True, exist_ok=True)
        target = self._file(model, dataset, doc, self.rank)
        tmp = target.with_name(target.name + ".tmp.npz")
        extra = {f"x_{k}": v for k, v in score.extra.items()}
        if score.covered is not None:
            extra["covered"] = score.covered
        with open(tmp, "wb") as f:
            np.savez(f, token_nll=score.token_nll, **extra)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        _fsync_dir(self.arrays)
        self._append({"kind": "doc", "model": model, "dataset": dataset, "doc": doc, "rank": self.rank})

    def done(self, model: str, dataset: str) -> dict[int, DocScore]:
        """Documents complete across every process's log (parts are merged)."""
        parts: dict[int, DocScore] = {}
        for log in sorted(self.folder.glob("checkpoint*.jsonl")):
            for x in self._read(log):
                if x.get("kind") != "doc" or x["model"] != model or x["dataset"] != dataset:
                    continue
                with np.load(self._file(model, dataset, x["doc"], x.get("rank", 0))) as z:
                    part = DocScore(z["token_nll"], {k[2:]: z[k] for k in z.files if k.startswith("x_")},
                                    z["covered"] if "covered" in z.files else None)
                parts[x["doc"]] = parts[x["doc"]].merge(part) if x["doc"] in parts else part
        return {d: p for d, p in parts.items() if p.covered is None}

    def count(self) -> int:
        return sum(1 for x in self.lines() if x.get("kind") == "doc")

    def remove(self) -> None:
        """Delete every process's checkpoint (once the results are written)."""
        shutil.rmtree(self.arrays, ignore_errors=True)
        for log in self.folder.glob("checkpoint*.jsonl"):
            log.unlink(missing_ok=True)
