"""Token stores: every document's ids in one flat int32 file (the token cache), read back a window at a time.

The token cache (``$LM_EVAL_IT_CACHE/tokens``) holds one entry per tokenizer ×
dataset fingerprint: ``<sha>.i32`` (the ids of every document, back to back)
and ``<sha>.bounds.npy`` (the ``docs + 1`` offsets). An entry is written to a
temporary name and renamed once whole, so a crash never leaves half an entry;
a damaged one is rebuilt. :class:`MemoryStore` holds ready-made sequences in
memory (tests, the Python API).

Example::

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> entry = CacheEntry("tok:data", folder)
    >>> entry.store is None                      # not cached yet: write it
    True
    >>> entry.write(np.array([5, 6, 7], np.int32)); entry.write(np.array([8], np.int32))
    >>> store = entry.close()
    >>> store.read(0, 1, 3).tolist(), store.length(1)
    ([6, 7], 1)
    >>> CacheEntry("tok:data", folder).store.bounds.tolist()     # the second run reads it back
    [0, 3, 4]
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK = 256  # documents tokenised at once, at most
BLOCK_CHARS = 1 << 18  # … and about this many characters (~64k tokens)


@dataclass
class TokenStore:
    """Token ids of every document in one flat int32 file, read back a window at a time."""

    path: Path
    bounds: np.ndarray  # (docs + 1,) int64 offsets

    def read(self, doc: int, a: int, b: int) -> np.ndarray:
        lo = int(self.bounds[doc]) + a
        n = max(0, min(b, int(self.bounds[doc + 1] - self.bounds[doc])) - a)
        if self.__dict__.get("_fh") is None:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - kept open for the run, read a window at a time
        self._fh.seek(lo * 4)
        return np.fromfile(self._fh, dtype=np.int32, count=n)

    def length(self, doc: int) -> int:
        return int(self.bounds[doc + 1] - self.bounds[doc])


class MemoryStore:
    """Token ids held in memory (small inputs: tests and the Python API's ready-made sequences)."""

    def __init__(self, seqs):
        self.seqs = [np.asarray(s, dtype=np.int32) for s in seqs]
        self.bounds = np.cumsum([0] + [len(s) for s in self.seqs], dtype=np.int64)

    def read(self, doc: int, a: int, b: int) -> np.ndarray:
        return self.seqs[doc][a:b]

    def length(self, doc: int) -> int:
        return len(self.seqs[doc])


def blocks(texts, size: int = BLOCK, chars: int = BLOCK_CHARS):
    """Documents in blocks of at most ``size`` documents and about ``chars`` characters (the tokenizer's
    per-token objects for one block are the transient peak of prepare, so a block is bounded by text)."""
    block, n = [], 0
    for text in texts:
        block.append(text)
        n += len(text)
        if len(block) >= size or n >= chars:
            yield block
            block, n = [], 0
    if block:
        yield block


class CacheEntry:
    """One key's entry in the token cache: :attr:`store` when it is there and whole, else written here."""

    def __init__(self, key: str, cache: Path):
        cache.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.path, self.bpath = cache / f"{name}.i32", cache / f"{name}.bounds.npy"
        self.store: TokenStore | None = self._lookup()
        self._tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        self._out = None
        self._counts = [0]

    def _lookup(self) -> TokenStore | None:
        if self.path.is_file() and self.bpath.is_file():
            try:
                bounds = np.load(self.bpath)
                if self.path.stat().st_size == 4 * int(bounds[-1]):
                    return TokenStore(self.path, bounds)
            except (OSError, ValueError, IndexError):
                pass  # a damaged entry is rebuilt
        return None

    def write(self, ids: np.ndarray) -> None:
        """Append the next document's ids (int32)."""
        if self._out is None:
            self._out = open(self._tmp, "wb")  # noqa: SIM115 - closed by close() or abort()
        ids.tofile(self._out)
        self._counts.append(len(ids))

    def close(self) -> TokenStore:
        """The store: the cached one, or the one just written (renamed into place with its bounds)."""
        if self.store is not None:
            return self.store
        if self._out is None:
            self._out = open(self._tmp, "wb")  # noqa: SIM115 - an empty dataset: an empty entry
        self._out.close()
        bounds = np.cumsum(self._counts, dtype=np.int64)
        os.replace(self._tmp, self.path)
        btmp = self.bpath.with_name(f"{self.bpath.stem}.{os.getpid()}.tmp.npy")
        np.save(btmp, bounds)
        os.replace(btmp, self.bpath)
        self.store = TokenStore(self.path, bounds)
        return self.store

    def abort(self) -> None:
        """Drop a half-written entry (prepare failed or was interrupted)."""
        if self._out is not None:
            self._out.close()
            self._tmp.unlink(missing_ok=True)
