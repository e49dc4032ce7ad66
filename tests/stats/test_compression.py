"""Compression baselines against the standard library's one-shot sizes."""

import bz2
import gzip
import lzma
import math

import pytest

from lm_eval_it.stats import compression as C
from lm_eval_it.stats.compression import (
    StreamCompressor,
    compress_doc,
    dataset_baselines,
    doc_baselines,
)

DOCS = ["The quick brown fox jumps over the lazy dog. " * 40,
        "Ünïcödé — naïve café, 東京, emoji 🙂\n" * 25,
        "",
        "x",
        "= Heading =\n\nSome text with numbers 12345 and 67890.\n" * 60]


def oneshot(data: bytes) -> dict:
    return {"gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "bz2": len(bz2.compress(data, 9)),
            "xz": len(lzma.compress(data, preset=9))}


def test_per_document_sizes_are_the_stdlib_one_shot_sizes():
    for text in DOCS:
        got = compress_doc(text, names=("gzip", "bz2", "xz"))
        assert got == oneshot(text.encode("utf-8"))


def test_streamed_dataset_equals_one_shot_on_the_concatenation():
    whole = "".join(DOCS).encode("utf-8")
    out = dataset_baselines(DOCS, names=("gzip", "bz2", "xz"))
    expect = oneshot(whole)
    for n in ("gzip", "bz2", "xz"):
        assert out[n]["bytes_in"] == len(whole)
        assert out[n]["bytes_out"] == expect[n]
        assert out[n]["bits_per_byte"] == pytest.approx(8 * expect[n] / len(whole), rel=1e-15)
    assert out["best"] == min(expect, key=expect.get)
    assert out["absent"] == list(C.absent())


def test_headers_count_empty_and_one_byte():
    # gzip: 10-byte header + empty deflate block (2) + CRC32 and size (8) = 20 bytes
    assert compress_doc("", names=("gzip",))["gzip"] == 20
    assert compress_doc("x", names=("gzip",))["gzip"] == 21
    assert len(bz2.compress(b"", 9)) == compress_doc("", names=("bz2",))["bz2"] == 14
    empty = doc_baselines("", names=("gzip", "bz2"))
    assert math.isnan(empty["gzip"]["bits_per_byte"]) and empty["best"] is None
    one = doc_baselines("x", names=("gzip",))
    assert one["gzip"]["bits_per_byte"] == 8 * 21  # 168 bits for 1 byte: headers dominate
    assert dataset_baselines([], names=("gzip",))["gzip"]["bytes_out"] == 20


def test_non_ascii_counts_utf8_bytes():
    text = "é東🙂"  # 2 + 3 + 4 bytes
    out = doc_baselines(text, names=("gzip",))
    assert out["gzip"]["bytes_in"] == 9
    assert out["gzip"]["bytes_out"] == len(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))


def test_stream_compressor_is_finished_once():
    sc = StreamCompressor(names=("gzip",))
    sc.feed("abc")
    first = sc.result()
    assert sc.result() == first
    with pytest.raises(RuntimeError):
        sc.feed("more")


def test_zstd_absent_or_present():
    if C._zstd is None:
        assert "zstd" not in C.available() and C.absent() == ("zstd",)
        assert "zstd" not in compress_doc("abc")
        return
    zstd = C._zstd
    text = "".join(DOCS)
    assert compress_doc(text, names=("zstd",))["zstd"] == len(zstd.ZstdCompressor(level=19).compress(text.encode()))
    c = zstd.ZstdCompressor(level=19).compressobj()
    expect = sum(len(c.compress(d.encode())) for d in DOCS) + len(c.flush())
    assert dataset_baselines(DOCS, names=("zstd",))["zstd"]["bytes_out"] == expect


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError):
        compress_doc("a", names=("brotli",))
