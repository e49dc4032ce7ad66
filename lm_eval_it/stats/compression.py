"""Compression baselines: bits per byte of general-purpose compressors.

A language model is a compressor (Delétang et al. 2023, *Language Modeling Is
Compression*): its bits per byte can be set against what off-the-shelf
compressors achieve on the same bytes. Each baseline is the **whole** output
of the compressor in bits, container headers and checksums included, divided
by the UTF-8 bytes in:

* ``gzip`` - DEFLATE level 9 in the gzip container (``gzip -9``; 10-byte
  header without a file name, mtime 0, CRC-32 and size trailer). Its size is
  that of ``gzip.compress(data, compresslevel=9, mtime=0)``.
* ``bz2``  - bzip2 level 9 (``bz2.compress(data, 9)``).
* ``xz``   - LZMA2 preset 9 in the xz container (``lzma.compress(data, preset=9)``).
* ``zstd`` - Zstandard level 19, only when the ``zstandard`` package is
  importable; otherwise it is listed under ``"absent"``.

Per document, :func:`compress_doc` gives each compressor's output size. For
the dataset as a whole the documents are concatenated in order with no
separator; :class:`StreamCompressor` feeds one incremental compressor object per
baseline document by document, so the concatenation is never built.

Example::

    >>> sizes = compress_doc("abc" * 100)
    >>> sizes["gzip"] == len(gzip.compress(b"abc" * 100, compresslevel=9, mtime=0))
    True
    >>> out = dataset_baselines(["abc" * 50, "abc" * 50])
    >>> out["gzip"]["bytes_in"], out["gzip"]["bytes_out"] == sizes["gzip"]
    (300, True)
    >>> out["best"] in out
    True
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from typing import Iterable

try:  # optional dependency
    import zstandard as _zstd
except ImportError:  # pragma: no cover - depends on the environment
    _zstd = None

ZSTD_LEVEL = 19
NAMES = ("gzip", "bz2", "xz", "zstd")


def available() -> tuple[str, ...]:
    """The baselines this environment can compute (``zstd`` needs ``zstandard``)."""
    return tuple(n for n in NAMES if n != "zstd" or _zstd is not None)


def absent() -> tuple[str, ...]:
    return tuple(n for n in NAMES if n not in available())


def _oneshot(name: str, data: bytes) -> int:
    if name == "gzip":
        return len(gzip.compress(data, compresslevel=9, mtime=0))
    if name == "bz2":
        return len(bz2.compress(data, 9))
    if name == "xz":
        return len(lzma.compress(data, format=lzma.FORMAT_XZ, preset=9))
    if name == "zstd":
        return len(_zstd.ZstdCompressor(level=ZSTD_LEVEL).compress(data))
    raise ValueError(f"unknown compressor {name!r}")


def compress_doc(text: str, names: Iterable[str] | None = None) -> dict[str, int]:
    """Compressed size in bytes (headers included) of ``text`` as UTF-8, per compressor."""
    return compressed_sizes(text.encode("utf-8"), names)


def compressed_sizes(data: bytes, names: Iterable[str] | None = None) -> dict[str, int]:
    """Compressed size in bytes (headers included) of any bytes, per compressor."""
    return {n: _oneshot(n, data) for n in (available() if names is None else names)}


class _Gzip:
    """DEFLATE level 9 with a gzip wrapper (wbits 31): same size as ``gzip.compress``."""

    def __init__(self):
        self._c = zlib.compressobj(9, zlib.DEFLATED, 31)

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush()


class _Xz:
    def __init__(self):
        self._c = lzma.LZMACompressor(format=lzma.FORMAT_XZ, preset=9)

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush()


class _Zstd:
    """zstd stream: the frame header carries no content size (unknown up front)."""

    def __init__(self):
        self._c = _zstd.ZstdCompressor(level=ZSTD_LEVEL).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._c.compress(data)

    def flush(self) -> bytes:
        return self._c.flush()


_STREAMS = {"gzip": _Gzip, "bz2": lambda: bz2.BZ2Compressor(9), "xz": _Xz, "zstd": _Zstd}


class StreamCompressor:
    """Whole-dataset compressed sizes, fed one document at a time.

    Only output lengths are kept, never the compressed bytes or the input.
    :meth:`result` flushes the compressors, so call it once, after the last
    document.
    """

    def __init__(self, names: Iterable[str] | None = None):
        self.names = tuple(available() if names is None else names)
        self._c = {n: _STREAMS[n]() for n in self.names}
        self.bytes_in = 0
        self._out = dict.fromkeys(self.names, 0)
        self._done = False

    def feed(self, text: str) -> None:
        if self._done:
            raise RuntimeError("StreamCompressor already finished")
        data = text.encode("utf-8")
        self.bytes_in += len(data)
        for n, c in self._c.items():
            self._out[n] += len(c.compress(data))

    def result(self) -> dict[str, int]:
        """Total compressed bytes per compressor (flushes on the first call)."""
        if not self._done:
            for n, c in self._c.items():
                self._out[n] += len(c.flush())
            self._done = True
        return dict(self._out)


def bits_per_byte(bytes_out: int, bytes_in: int) -> float:
    """``8 · bytes_out / bytes_in``; NaN when there is no input."""
    return 8.0 * bytes_out / bytes_in if bytes_in else float("nan")


def summarize_sizes(bytes_in: int, sizes: dict[str, int]) -> dict:
    """``{name: {bits_per_byte, bytes_in, bytes_out}, "best": name, "absent": [...]}``.

    ``best`` is the compressor with the fewest output bytes (``None`` without input);
    ``absent`` lists the baselines this environment cannot compute.
    """
    out: dict = {n: {"bits_per_byte": bits_per_byte(s, bytes_in), "bytes_in": bytes_in, "bytes_out": s}
                 for n, s in sizes.items()}
    out["best"] = min(sizes, key=lambda n: (sizes[n], NAMES.index(n))) if bytes_in and sizes else None
    out["absent"] = list(absent())
    return out


def dataset_baselines(texts: Iterable[str], names: Iterable[str] | None = None) -> dict:
    """Baselines for the documents concatenated in order (no separator), streamed."""
    sc = StreamCompressor(names)
    for t in texts:
        sc.feed(t)
    return summarize_sizes(sc.bytes_in, sc.result())


def doc_baselines(text: str, names: Iterable[str] | None = None) -> dict:
    """Per-document form of :func:`dataset_baselines` (one-shot compression)."""
    return summarize_sizes(len(text.encode("utf-8")), compress_doc(text, names))
