"""The run folder: where results go, and the checkpoint to resume.

``results/<run_name>/<UTC timestamp>/`` is created (and proved writable) before
any scoring. An unfinished folder of the same config is resumed instead, or the
one named by ``--resume``.

Example::

    folder, ck = open_checkpoint(cfg, header, datetime.now(timezone.utc), resume=None)
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from .checkpoint import Checkpoint
from .config import RunConfig
from .errors import UserError

log = logging.getLogger(__name__)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was checkpointed, and where."""

    def __init__(self, folder: Path, documents: int):
        super().__init__(str(folder))
        self.folder, self.documents = folder, documents


def prepare_output(cfg: RunConfig, now: datetime) -> Path:
    """Create ``<dir>/<run>/<timestamp>/`` and prove it is writable, before any scoring."""
    base = Path(cfg.output.dir).expanduser() / cfg.output.run_name
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    folder, n = base / stamp, 1
    try:
        while folder.exists():
            folder, n = base / f"{stamp}-{n}", n + 1
        folder.mkdir(parents=True)
    except OSError as e:
        raise UserError(f"output.dir: cannot write to {str(base)!r} ({e.strerror}); choose another folder") from None
    check_writable(folder)
    return folder


def check_writable(folder: Path) -> None:
    probe = folder / ".write-test"
    try:
        probe.write_bytes(b"x" * (1 << 20))  # room for at least a results file
        probe.unlink()
    except OSError as e:
        probe.unlink(missing_ok=True)
        raise UserError(f"output.dir: cannot write to {str(folder)!r} ({e.strerror}); choose another folder") from None


def open_checkpoint(cfg: RunConfig, header: dict, now: datetime, resume: str | None) -> tuple[Path, Checkpoint]:
    """The run folder and its checkpoint: the one to resume, or a new one."""
    if resume:
        folder = Path(resume)
        if not Checkpoint(folder).exists():
            raise UserError(f"--resume: {str(folder)!r} holds no checkpoint to resume")
        if (folder / "results.json").is_file():
            raise UserError(f"--resume: {str(folder)!r} is already complete")
    else:
        base = Path(cfg.output.dir).expanduser() / cfg.output.run_name
        candidates = sorted(base.glob("*/checkpoint.jsonl"), reverse=True) if base.is_dir() else []
        folder = next((c.parent for c in candidates if not (c.parent / "results.json").exists()
                       and not Checkpoint(c.parent).mismatch(header)), None)
    if folder is None:
        folder = prepare_output(cfg, now)  # new, and proved writable
    else:
        check_writable(folder)
        log.warning("resuming %s: %d documents already scored", folder, Checkpoint(folder).count())
    ck = Checkpoint(folder)
    ck.begin(header)
    return folder, ck
