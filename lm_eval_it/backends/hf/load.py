"""Hugging Face model and tokenizer loading: hub ids, local folders and GGUF files.

* Where the model is (``pkg://``, folders, a ``.gguf`` path, hub ids checked
  fast): :mod:`lm_eval_it.backends.hf.locate`.
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
from lm_eval_it.backends.hf.locate import hub_access, hub_fingerprints, locate
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


@dataclass
class _Source:
    """Where to load from, with what loader arguments, and the fingerprints known before loading."""

    load_from: str
    kwargs: dict
    fingerprint: str
    tok_print: str
    source: dict
    gguf_file: str | None


def _source(cfg: ModelConfig) -> _Source:
    """Locate the model; a GGUF file is de-quantised (once, cached), a local folder fingerprinted."""
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
    return _Source(load_from, kwargs, fingerprint, tok_print, source, gguf_file)


def _from_pretrained(cfg: ModelConfig, src: _Source, dtype: str) -> tuple[Any, Any]:
    """``(tokenizer, model)`` through transformers; any failure is one line."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    load_from, kwargs = src.load_from, src.kwargs
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
    return tokenizer, model


def _place(model, cfg: ModelConfig, device: str) -> str:
    """Eval mode, on ``device``; with a device map, the device its embeddings went to."""
    model.eval()
    if cfg.device_map:  # accelerate placed the layers; inputs go where the embeddings are
        return str(model.get_input_embeddings().weight.device)
    model.to(device)
    return device


def _int8(model, cfg: ModelConfig, device: str, dtype: str, fingerprint: str) -> tuple[Any, str, str]:
    """``quantize: int8``: torch dynamic quantisation of every linear layer but the LM head (CPU only)."""
    import torch

    if cfg.quantize != "int8":
        return model, dtype, fingerprint
    if device != "cpu":
        raise UserError(f"model {cfg.name!r}: quantize: int8 (torch dynamic quantisation) runs on CPU only")
    head = model.get_output_embeddings()
    spec = {name: torch.ao.quantization.per_channel_dynamic_qconfig for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and m is not head}  # the LM head stays in float, as usual
    model = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
    return model, f"int8-dynamic({dtype})", fingerprint + "+int8-dynamic"


def load_model(cfg: ModelConfig, device: str) -> LoadedModel:
    """Load one configured model onto ``device`` in eval mode."""
    t0 = time.perf_counter()
    dtype = resolve_dtype(cfg.dtype, device)
    src = _source(cfg)
    tokenizer, model = _from_pretrained(cfg, src, dtype)
    fingerprint, tok_print = src.fingerprint, src.tok_print
    if not fingerprint:
        commit = getattr(model.config, "_commit_hash", None) or cfg.revision or "main"
        fingerprint, tok_print = hub_fingerprints(cfg.path, commit)
    device = _place(model, cfg, device)
    model, dtype, fingerprint = _int8(model, cfg, device, dtype, fingerprint)
    return LoadedModel(
        name=cfg.name, model=model, tokenizer=tokenizer, device=device, dtype=dtype,
        fingerprint=fingerprint, source=src.source, max_positions=max_positions(model.config),
        load_seconds=time.perf_counter() - t0, tokenizer_fingerprint=tok_print,
    )
