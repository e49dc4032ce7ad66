"""The run configuration: a typed object, validated when it is loaded.

A run is ``models × datasets`` under one ``eval`` section, written to
``output``. Every error names the key, the bad value and what was expected,
and suggests the closest key for a typo.

Example::

    >>> cfg = parse_config({
    ...     "models": [{"path": "HuggingFaceTB/SmolLM2-135M"}],
    ...     "datasets": [{"builtin": "pydoc_topics", "limit": 5}],
    ...     "eval": {"window": 512, "stride": 256},
    ... })
    >>> cfg.eval.stride, cfg.models[0].name, cfg.datasets[0].name
    (256, 'SmolLM2-135M', 'pydoc_topics')
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .errors import UserError, did_you_mean
from .named_data import NAMED, hub_ids, named_defaults

BUILTIN_DATASETS = tuple(NAMED)
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
FORMAT_BY_SUFFIX = {".txt": "text", ".raw": "text", ".md": "text", ".jsonl": "jsonl", ".json": "jsonl",
                    ".parquet": "parquet", ".csv": "csv"}


def format_of(path: str) -> str | None:
    """The format told by a file name's suffix (``.gz`` looks one suffix further), or None."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return FORMAT_BY_SUFFIX.get(suffixes[-1]) if suffixes else None


def hub_id_hint(path: str) -> str:
    """`` (did you mean `hub: x`?)`` when a missing, suffix-less ``path:`` reads like a hub id, else ``""``.

    A relative path was made absolute against the config's folder, so the id is the last part,
    or the last two when the folder above does not exist either (``allenai/c4``).
    """
    p = Path(path).expanduser()
    if p.exists() or format_of(path) or any(c in path for c in "*?["):
        return ""
    guess = p.name if p.parent.exists() or len(p.parts) < 2 else f"{p.parent.name}/{p.name}"
    known = [h for h in hub_ids() if h == guess or h.endswith("/" + guess)]
    if known:
        return f"; did you mean `hub: {known[0]}`?"
    return "" if p.suffix else f"; did you mean `hub: {guess}`?"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class ModelConfig(_Strict):
    """One model: a hub id or a local folder, optionally a GGUF file in it."""

    path: str = Field(min_length=1)
    name: str | None = None
    backend: Literal["hf"] = "hf"  # what scores the model: hf = transformers (PyTorch); the only one so far
    gguf_file: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    allow_pickle: bool = False  # load .bin (pickle) weights; safetensors only unless set
    quantize: Literal["none", "int8"] = "none"  # int8: torch dynamic quantisation of Linear layers but the head (CPU)
    compare_to: str | None = None  # name of a reference model: adds KL, top-1 agreement and Δp against it
    device_map: str | None = None  # e.g. "auto": accelerate spreads a model too big for one device
    compile: bool = False  # torch.compile the model body (same numbers within 1e-6; see benchmarks/throughput.py)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_alias(cls, v: Any) -> Any:
        return DTYPE_ALIASES.get(v, v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _default_name(self) -> "ModelConfig":
        if not self.name:
            self.name = default_model_name(self.path, self.gguf_file)
        return self


def default_model_name(path: str, gguf_file: str | None = None) -> str:
    """The name a model gets without ``name:``: the GGUF file's stem, else the last part of its path."""
    base = Path(gguf_file).stem if gguf_file else str(path).rstrip("/").split("/")[-1]
    base = base[: -len(".gguf")] if base.lower().endswith(".gguf") else base  # path: a .gguf file
    return base.split("://")[-1]


class DatasetConfig(_Strict):
    """One dataset: exactly one of ``builtin``, ``hub`` or ``path`` (``builtin`` + ``path``: a local copy)."""

    name: str | None = None
    builtin: Literal[BUILTIN_DATASETS] | None = None  # type: ignore[valid-type]  # see named_data
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    revision: str | None = None
    path: str | None = None
    format: Literal["auto", "text", "jsonl", "parquet", "csv"] = "auto"
    text_field: str = "text"
    doc_regex: str | None = None
    mode: Literal["documents", "stream"] = "documents"
    separator: str = "\n\n"
    limit: int | None = Field(default=None, ge=1)
    encoding_errors: Literal["strict", "replace"] = "strict"
    group_by: str | None = None  # rows (jsonl/parquet/csv/hub): the field naming each document's group
    streaming: bool = False  # hub only: read the rows as a stream (datasets' IterableDataset), never all in memory

    @field_validator("doc_regex")
    @classmethod
    def _regex_compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a valid regular expression ({e})") from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> "DatasetConfig":
        given = [k for k in ("builtin", "hub", "path") if getattr(self, k)]
        if len(given) != 1 and given != ["builtin", "path"]:
            raise ValueError(
                f"a dataset needs exactly one of 'builtin', 'hub' or 'path' ('path' next to 'builtin' "
                f"is a local copy of it); got {given or 'none'}"
            )
        if self.builtin == "pydoc_topics" and self.path:
            raise ValueError("builtin pydoc_topics ships with Python; it takes no 'path'")
        if self.builtin:
            for key, value in named_defaults(self.builtin, local=bool(self.path)).items():
                if key not in self.model_fields_set:
                    setattr(self, key, value)
        if self.path and self.format == "auto":
            fmt = format_of(self.path)
            if fmt is None:
                hint = hub_id_hint(self.path)
                if hint:
                    raise ValueError(f"path {self.path!r} does not exist{hint}")
                raise ValueError(
                    f"cannot tell the format of {self.path!r} from its suffix; "
                    f"set format: text, jsonl, parquet or csv"
                )
            self.format = fmt
        if self.streaming and (self.path or self.builtin == "pydoc_topics"):
            raise ValueError("streaming: true reads a hub dataset; a local path: or pydoc_topics is read directly")
        if self.streaming and self.doc_regex:
            raise ValueError("doc_regex joins all rows before cutting them; it cannot be used with streaming: true")
        globbed = bool(self.path) and any(c in self.path for c in "*?[")
        if globbed and self.format != "text":
            raise ValueError(f"a glob in path: reads text files (one group per file); {self.path!r} is {self.format}")
        if self.group_by:
            why = ("mode: stream makes one document" if self.mode == "stream" else
                   "a text file has no fields; a glob in path: groups by file" if self.format == "text" else
                   "pydoc_topics has no fields" if self.builtin == "pydoc_topics" else
                   "streamed documents cannot carry a list of groups" if self.streaming else
                   "doc_regex cuts documents across rows" if self.doc_regex else "")
            if why:
                raise ValueError(f"group_by {self.group_by!r} cannot be used here: {why}")
        if not self.name:
            if globbed:
                self.name = Path(self.path).parent.name or "files"
            elif self.builtin:
                self.name = self.builtin
            elif self.hub:
                self.name = "/".join(x for x in (self.hub.split("/")[-1], self.config, self.split) if x)
            else:
                self.name = Path(self.path).stem
        return self


class EvalConfig(_Strict):
    """How windows are cut and scored."""

    window: int = Field(default=1024, ge=2)
    stride: int | None = Field(default=None, ge=1)
    window_unit: Literal["tokens", "bytes"] = "tokens"
    strict_window: bool = False  # error (instead of clamping) when window exceeds the model's positions
    prefix: str = "auto"
    batch_size: int | str = "auto"
    device: str = "auto"
    seed: int = 0
    temperatures: list[float] = Field(default_factory=list)
    best_temperature: Literal["interpolated", "exact"] = "interpolated"  # exact: extra scoring passes
    min_k: float = Field(default=20.0, gt=0, le=100)  # Min-K% prob: the k% least likely tokens per document
    compressors: list[Literal["gzip", "bz2", "xz", "zstd"]] = Field(default_factory=lambda: ["gzip", "bz2", "xz", "zstd"])
    threads: int | Literal["auto"] = "auto"  # torch intra-op threads; auto: all cores for the model, 1 for statistics

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, v: list[float]) -> list[float]:
        bad = [t for t in v if not (t > 0 and math.isfinite(t))]
        if bad:
            raise ValueError(f"expected temperatures > 0, got {bad}")
        return sorted(set(v) | {1.0}) if v else []

    @field_validator("batch_size")
    @classmethod
    def _batch_size(cls, v: int | str) -> int | str:
        if v == "auto" or (isinstance(v, int) and v >= 1):
            return v
        raise ValueError("expected a positive integer or 'auto'")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v):
            raise ValueError("expected 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v:
            raise ValueError("expected 'auto', 'bos', 'eos', 'none' or a literal token")
        return v

    @model_validator(mode="after")
    def _stride(self) -> "EvalConfig":
        if self.stride is None:
            self.stride = self.window
        if self.stride > self.window:
            raise ValueError(f"stride {self.stride} is larger than window {self.window}; expected 1 <= stride <= window")
        return self


class OutputConfig(_Strict):
    dir: str = "results"
    run_name: str | None = None
    baseline: str | None = None  # model name that Δ bits per byte is measured against
    per_token: bool = False  # write per-token NLL/entropy arrays (NPZ) for analysis
    plots: bool = True  # PNG plots and report.html


class RunConfig(_Strict):
    models: list[ModelConfig] = Field(min_length=1)
    datasets: list[DatasetConfig] = Field(min_length=1)
    eval: EvalConfig = EvalConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="after")
    def _unique_names(self) -> "RunConfig":
        for kind, items in (("models", self.models), ("datasets", self.datasets)):
            names = [x.name for x in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {kind} name(s) {dupes}; give each a distinct 'name'")
        names = [m.name for m in self.models]
        for i, m in enumerate(self.models):
            if m.compare_to is not None and (m.compare_to not in names or m.compare_to == m.name):
                others = [n for n in names if n != m.name]
                raise ValueError(f"models.{i}.compare_to: got {m.compare_to!r}, expected the name of another model "
                                 f"{others}{did_you_mean(m.compare_to, others)}")
        if self.output.baseline is not None and self.output.baseline not in names:
            raise ValueError(f"output.baseline: got {self.output.baseline!r}, expected one of the model names "
                             f"{names}{did_you_mean(self.output.baseline, names)}")
        return self


# Loading (files, overrides, relative paths, error messages) lives in config_load; importable from here too.
from .config_load import (  # noqa: E402
    parse_config, apply_override, read_raw, resolve_relative_paths, load_raw, finish_config, load_config,
)
