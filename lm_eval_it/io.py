"""Atomic file writes that honour the umask.

The data goes to a temporary file in the same folder (created with mode
``0o666``, so the process umask applies exactly as for ``open(path, "w")``),
is fsynced, then renamed over the target: a reader sees the old file or the
complete new one, never half of it.

Files that a library wrote with a private mode (``safetensors`` writes 0600)
get the same rule with :func:`honour_umask`.

Example::

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write_text(os.path.join(folder, "a.txt"), "hello\\n")
    >>> open(os.path.join(folder, "a.txt")).read()
    'hello\\n'
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; the file mode is ``0o666 & ~umask``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded (UTF-8 by default, no newline translation)."""
    atomic_write_bytes(path, text.encode(encoding))


def umask_mode(executable: bool = False) -> int:
    """The mode ``open()`` would give a new file (``0o666 & ~umask``; ``0o777`` for a folder or program)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if executable else 0o666) & ~mask


def honour_umask(folder: str | Path) -> None:
    """Give ``folder`` and every file and folder under it the mode the umask gives new ones."""
    folder = Path(folder)
    files, dirs = umask_mode(), umask_mode(executable=True)
    for p in [folder, *folder.rglob("*")]:
        if not p.is_symlink():
            p.chmod(dirs if p.is_dir() else files)
