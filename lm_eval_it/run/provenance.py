"""Provenance: what produced a result (versions, code, machine).

Example::

    >>> p = collect("cpu")
    >>> p["device"], "torch" in p["versions"]
    ('cpu', True)
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("lm_eval_it", "torch", "transformers", "tokenizers", "datasets", "numpy", "gguf", "accelerate")


def _version(pkg: str) -> str | None:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the lm_eval_it checkout, with ``+dirty`` for local changes."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def collect(device: str) -> dict:
    import torch

    info = {
        "versions": {p: _version(p) for p in PACKAGES},
        "python": sys.version.split()[0],
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info
