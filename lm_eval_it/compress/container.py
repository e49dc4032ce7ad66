"""The ``.lmz`` container: a self-describing header, then the range coder's words, each part checksummed.

Layout (little-endian)::

    magic  b"LMZ\\x00"  (4 bytes)
    format version      (u16)
    header length       (u32), then the header: zlib-compressed UTF-8 JSON
    body                the compressed words (u32 each)

The header holds the original length and sha256, the model's and tokenizer's names and fingerprints, the
settings the probabilities depend on (dtype, device kind, threads, chunk length, batch, torch and
transformers versions), the coder and its parameters, the segments (text / escaped bytes), and the body's
sha256, so a corrupted file fails in one line before any decoding. :func:`read` refuses anything else.

Example::

    >>> blob = pack({"original_length": 0}, np.zeros(0, np.uint32))
    >>> header, body = unpack(blob)
    >>> header["original_length"], len(body), blob[:4]
    (0, 0, b'LMZ\\x00')
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from lm_eval_it.errors import UserError
from lm_eval_it.io import atomic_write_bytes

MAGIC = b"LMZ\x00"
VERSION = 1
_HEAD = struct.Struct("<4sHI")


def pack(header: dict, body: np.ndarray) -> bytes:
    """The container's bytes: the header (with the body's sha256 added) and the body."""
    raw = np.ascontiguousarray(body, dtype="<u4").tobytes()
    header = dict(header, body_sha256=hashlib.sha256(raw).hexdigest(), body_bytes=len(raw))
    text = zlib.compress(json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8"), 9)
    return _HEAD.pack(MAGIC, VERSION, len(text)) + text + raw


def _header(blob: bytes, name: str) -> tuple[dict, int]:
    """The header and the body's offset; one-line errors for what is not a container of this format."""
    if len(blob) < _HEAD.size or blob[:4] != MAGIC:
        raise UserError(f"{name}: not an lm_eval_it compressed file (no LMZ magic)")
    _, version, n = _HEAD.unpack_from(blob)
    if version != VERSION:
        raise UserError(f"{name}: container format {version}; this version reads format {VERSION}")
    try:
        header = json.loads(zlib.decompress(blob[_HEAD.size: _HEAD.size + n]).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{name}: the header is corrupted (not valid JSON)") from None
    return header, _HEAD.size + n


def header_only(blob: bytes, name: str = "input") -> dict:
    """The header, without checking the body (``unpack`` checks it)."""
    return _header(blob, name)[0]


def unpack(blob: bytes, name: str = "input") -> tuple[dict, np.ndarray]:
    """``(header, body words)`` of a container; a one-line :class:`UserError` for anything that is not one,
    a newer format, a truncated file or a body whose checksum does not match."""
    header, at = _header(blob, name)
    raw = blob[at:]
    if len(raw) != header.get("body_bytes") or hashlib.sha256(raw).hexdigest() != header.get("body_sha256"):
        why = ("corrupted (its sha256 differs from the header's)" if len(raw) == header.get("body_bytes") else
               f"truncated or padded ({len(raw)} bytes, the header says {header.get('body_bytes')})")
        raise UserError(f"{name}: checksum mismatch: the compressed body is {why}")
    return header, np.frombuffer(raw, dtype="<u4").astype(np.uint32)


_FIELDS = {"chunk": (1, 1 << 20), "lanes": (1, 1 << 16), "tokens": (0, 1 << 40), "raw_bytes": (0, 1 << 40),
           "original_length": (0, 1 << 50)}


def check_fields(header: dict, name: str = "input") -> None:
    """Refuse, in one line, a header whose counts a decoder would trust are missing or out of range."""
    fields = {k: header.get(k) for k in _FIELDS} | {"threads": (header.get("settings") or {}).get("threads")}
    for key, value in fields.items():
        lo, hi = _FIELDS.get(key, (1, 1 << 12))
        if type(value) is not int or not lo <= value <= hi:
            raise UserError(f"{name}: the header's {key} is {value!r}, not an integer in [{lo}, {hi}]; "
                            "the file is damaged or was not made by lm-eval-it compress")
    segs = header.get("segments")
    ok = isinstance(segs, list) and all(isinstance(g, list) and len(g) == 2 and g[0] in ("text", "raw")
                                        and type(g[1]) is int and g[1] >= 0 for g in segs)
    if not ok or [sum(n for k, n in segs if k == kind) for kind in ("text", "raw")] != [header["tokens"],
                                                                                        header["raw_bytes"]]:
        raise UserError(f"{name}: the header's segments do not add up to its tokens and raw bytes; the file is damaged")


def header_bytes(blob: bytes) -> int:
    """Bytes of a container that are not the compressed body: magic, version, lengths and header."""
    _, _, n = _HEAD.unpack_from(blob)
    return _HEAD.size + n


def write(path: Path, header: dict, body: np.ndarray) -> int:
    """Write a container atomically; return its size in bytes."""
    blob = pack(header, body)
    atomic_write_bytes(Path(path), blob)
    return len(blob)


def read(path: Path) -> tuple[dict, np.ndarray]:
    """Read and check a container file."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{path}: no such file")
    return unpack(p.read_bytes(), str(path))
