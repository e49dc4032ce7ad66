"""Content fingerprints of model and tokenizer files: sha256 over every byte, hashed once.

Each file's digest is cached in ``$LM_EVAL_IT_CACHE/fingerprints/`` (one small
JSON file per file), keyed by its resolved path, size, ``mtime_ns`` and inode,
so an unchanged multi-GB weight file is read only once. A file modified in the
last few seconds is hashed but not cached: a later write within the same
timestamp tick could otherwise go unnoticed (git calls this "racy").

A folder has two fingerprints: the model (``config.json``, weight files, custom
code) and the tokenizer (``tokenizer.json``, vocab, merges, sentencepiece
models...); each is a sha256 over the sorted ``name digest`` lines of its files.

Example::

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "config.json").write_text("{}"); _ = (d / "vocab.json").write_text("{}")
    >>> [f.name for f in model_files(d)], [f.name for f in tokenizer_files(d)]
    (['config.json'], ['vocab.json'])
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from pathlib import Path

RACY_SECONDS = 2.0  # files younger than this are not cached
TOKENIZER_PATTERNS = ("tokenizer*.json", "special_tokens_map.json", "added_tokens.json", "vocab.*", "merges.txt",
                      "*.model", "*.tiktoken")
WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json")
PICKLE_PATTERNS = ("*.bin", "*.bin.index.json", "*.pt", "*.pth")


def cache_root() -> Path:
    return Path(os.environ.get("LM_EVAL_IT_CACHE", "~/.cache/lm_eval_it")).expanduser()


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    """Streaming sha256 of every byte of ``path`` (4 MiB reads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _key(st: os.stat_result, real: Path) -> dict:
    return {"path": str(real), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes, served from the digest cache while path, size, mtime and inode match."""
    real = Path(path).resolve()
    st = real.stat()
    key = _key(st, real)
    entry = cache_root() / "fingerprints" / (hashlib.sha256(str(real).encode()).hexdigest()[:40] + ".json")
    try:
        cached = json.loads(entry.read_text())
        if {k: cached.get(k) for k in key} == key and isinstance(cached.get("sha256"), str):
            return cached["sha256"]
    except (OSError, ValueError):
        pass  # no entry, or a damaged one: hash again
    digest = sha256_file(real)
    after = real.stat()
    if _key(after, real) == key and time.time() - after.st_mtime_ns / 1e9 >= RACY_SECONDS:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = entry.with_name(f"{entry.stem}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({**key, "sha256": digest}))
            os.replace(tmp, entry)
        except OSError:
            pass  # caching is an optimisation only
    return digest


def _matching(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and any(fnmatch.fnmatch(p.name, pat) for pat in patterns))


def tokenizer_files(folder: Path) -> list[Path]:
    """The files a tokenizer loads from: tokenizer*.json, special tokens, vocab, merges, *.model."""
    return _matching(folder, TOKENIZER_PATTERNS)


def model_files(folder: Path) -> list[Path]:
    """config.json, custom code and the weights that load: safetensors if any, else pickle files."""
    weights = _matching(folder, WEIGHT_PATTERNS) or _matching(folder, PICKLE_PATTERNS)
    tok = set(tokenizer_files(folder))
    return sorted(set(_matching(folder, ("config.json", "*.py")) + [w for w in weights if w not in tok]))


def digest_files(files: list[Path]) -> str:
    """sha256 over ``name digest`` lines of the files (sorted by name)."""
    h = hashlib.sha256()
    for f in sorted(files, key=lambda p: p.name):
        h.update(f"{f.name} {file_digest(f)}\n".encode())
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """sha256 over every byte of the folder's model files (config, weights, custom code)."""
    return digest_files(model_files(Path(folder)))


def tokenizer_fingerprint(folder: Path) -> str:
    """sha256 over every byte of the folder's tokenizer files; empty if it has none."""
    files = tokenizer_files(Path(folder))
    return digest_files(files) if files else ""
