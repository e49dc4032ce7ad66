"""The run folder: where results go, and the checkpoint to resume.

``results/<run_name>/<UTC timestamp>/`` is created (and proved writable) before
any scoring. An unfinished folder of the same config is resumed instead, or the
one named by ``--resume``. A new folder that holds nothing worth keeping when
the run fails or is interrupted (no finished or partly scored document) is
removed again, with the parents the run made (:func:`discard`).

Example::

    folder, ck = open_checkpoint(cfg, header, datetime.now(timezone.utc), resume=None)
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path

from lm_eval_it.config.schema import RunConfig
from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.engine.partial import count_open
from lm_eval_it.errors import UserError

log = logging.getLogger(__name__)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, or a :class:`~lm_eval_it.errors.RunStopped` (``reason``): what was checkpointed, and where."""

    def __init__(self, folder: Path | None, documents: int, partial: int = 0, reason: str | None = None):
        super().__init__(str(folder))
        self.folder, self.documents, self.partial, self.reason = folder, documents, partial, reason


def interrupted(ck: Checkpoint, reason: str | None = None) -> RunInterrupted:
    """Ctrl-C (or what stopped the run, ``reason``): snapshot the open documents, close the log; the folder is
    kept only if it holds something."""
    if ck.watch is not None:
        try:
            ck.watch.write()
        except OSError as e:
            log.warning("could not save the partly scored documents (%s); the finished ones are kept", e)
    ck.close()
    partial = count_open(ck.folder)
    return RunInterrupted(None if discard(ck) else ck.folder, ck.count(), partial, reason)


def discard(ck: Checkpoint) -> bool:
    """Remove a run folder this run created, and the parents it made, if nothing in it is worth keeping."""
    folder = ck.folder.absolute()
    if ck.created is None or ck.count() or count_open(folder) or (folder / "results.json").exists():
        return False
    ck.close()
    shutil.rmtree(folder, ignore_errors=True)
    for parent in [p for p in folder.parents if ck.created in (p, *p.parents)]:
        try:
            parent.rmdir()  # only when empty: another run may be writing next to it
        except OSError:
            break
    return True


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
    created = None
    if folder is None:
        created = outermost_missing(Path(cfg.output.dir).expanduser() / cfg.output.run_name)
        folder = prepare_output(cfg, now)  # new, and proved writable
        created = created or folder
    else:
        check_writable(folder)
        partial = count_open(folder)
        log.warning("resuming %s: %d documents already scored%s", folder, Checkpoint(folder).count(),
                    f", {partial} partly" if partial else "")
    ck = Checkpoint(folder)
    ck.created = created
    ck.begin(header)
    return folder, ck


def outermost_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (``None`` if it exists)."""
    path = path.absolute()
    missing = None
    while not path.exists() and path != path.parent:
        missing, path = path, path.parent
    return missing
