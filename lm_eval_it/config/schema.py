"""The run configuration: a typed object, validated when it is loaded.

A run is ``models × datasets`` under one ``eval`` section, written to
``output``. Every error names the key, the bad value and what was expected,
and suggests the closest key for a typo.

Example::

    >>> from lm_eval_it.config.load import parse_config
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

from lm_eval_it.config.named import NAMED, hub_ids, named_defaults
from lm_eval_it.errors import did_you_mean

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

    path: str = Field(min_length=1, description="A hub id (`org/name`), a local folder, a `.gguf` file, or "
                      "`pkg://<installed package>` for a model shipped in a wheel. Relative to the config file's folder "
                      "when it starts with `.` or exists there.")
    name: str | None = Field(default=None, description="The name in tables and results; default: the GGUF file's "
                             "stem, else the last part of `path`.")
    backend: Literal["hf"] = Field(default="hf", description="What scores the model: `hf` = transformers "
                                   "(PyTorch), the only backend so far.")
    gguf_file: str | None = Field(default=None, description="A GGUF file inside `path`: de-quantised once to "
                                  "float weights and cached as safetensors under `$LM_EVAL_IT_CACHE`.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights dtype (`fp32`, `bf16`, `fp16` are accepted too); auto: bfloat16 on CUDA (float16 "
                                    "where bf16 is unsupported), float32 on CPU and MPS. Log-softmax is float32 whatever the dtype.")
    revision: str | None = Field(default=None, description="Hub revision (branch, tag or commit) of a hub model.")
    trust_remote_code: bool = Field(default=False, description="Allow a model's own Python code from its repository "
                                    "(off unless you say so).")
    allow_pickle: bool = Field(default=False, description="Load `.bin` (pickle) weights; safetensors only unless set.")
    quantize: Literal["none", "int8"] = Field(
        default="none", description="int8: torch dynamic quantisation of the Linear layers but the LM head (CPU only; "
                                    "int8 weights per channel, activations per tensor at run time).")
    compare_to: str | None = Field(default=None, description="The name of another model in this config: adds KL, "
                                   "top-1 agreement and Δp against it, scored in lockstep.")
    device_map: str | None = Field(default=None, description="E.g. `auto`: accelerate spreads a model too big for "
                                   "one device over the visible devices.")
    compile: bool = Field(default=False, description="`torch.compile` the model body (same numbers within 1e-6; "
                          "slower on the CPU where it was measured, so off by default).")

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

    name: str | None = Field(
        default=None, description="The name in tables and results; default: the builtin name, the hub id's last part with "
        "config and split, or the file's stem (a glob: its folder's name).")
    builtin: Literal[BUILTIN_DATASETS] | None = Field(  # type: ignore[valid-type]  # see named_data
        default=None, description="A named dataset (see Datasets): it fixes the hub id, config, split, text field and "
        "how rows become documents; keys you set yourself win. With `path:` a local copy gets the same shaping.")
    hub: str | None = Field(default=None, description="A Hugging Face datasets hub id, e.g. `Salesforce/wikitext`.")
    config: str | None = Field(default=None, description="The hub dataset's configuration, e.g. `wikitext-2-raw-v1`.")
    split: str = Field(default="test", description="The hub dataset's split.")
    revision: str | None = Field(default=None, description="Hub dataset revision; pin it to notice upstream changes.")
    path: str | None = Field(
        default=None, description="A local file (`.txt`/`.raw`/`.md`, `.jsonl`, `.parquet`, `.csv`, `.gz` allowed) or a "
        "glob of text files (each file one group); relative to the config file's folder.")
    format: Literal["auto", "text", "jsonl", "parquet", "csv"] = Field(
        default="auto", description="The file format; auto: from the suffix.")
    text_field: str = Field(default="text", description="The column holding the text (jsonl/parquet/csv/hub rows).")
    doc_regex: str | None = Field(
        default=None, description="Text (or rows taken as lines): a document starts at each line this regular "
        "expression matches, e.g. `'^ = [^=].* = \\r?$'` for WikiText articles.")
    mode: Literal["documents", "stream"] = Field(
        default="documents", description="documents: each document scored alone; stream: all rows joined by "
        "`separator` into one document.")
    separator: str = Field(default="\n\n", description="The joiner of rows in `mode: stream`.")
    limit: int | None = Field(default=None, ge=1, description="Only the first N rows or documents.")
    encoding_errors: Literal["strict", "replace"] = Field(
        default="strict", description="strict: non-UTF-8 bytes are an error naming the byte offset; replace: U+FFFD.")
    group_by: str | None = Field(
        default=None, description="Rows (jsonl/parquet/csv/hub): the field naming each document's group, for "
        "per-group tables; a row without it is an error.")
    streaming: bool = Field(
        default=False, description="Hub only: read the rows as a stream (datasets' IterableDataset), never all in "
        "memory; the fingerprint is then taken over the source, not the text.")

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

    window: int = Field(
        default=1024, ge=2, description="Tokens of context per forward pass (the prefix included); clamped to the "
        "model's maximum positions, with the stride scaled by the same factor.")
    stride: int | None = Field(
        default=None, ge=1, description="How far each window advances, 1 <= stride <= window; default: the window. "
        "Each window scores only tokens no earlier window scored.")
    window_unit: Literal["tokens", "bytes"] = Field(
        default="tokens", description="bytes: window and stride are bytes of text, converted per model at its "
        "bytes per token on the dataset (equal context across tokenizers).")
    strict_window: bool = Field(
        default=False, description="true: a window beyond the model's positions is an error instead of a clamp.")
    prefix: str = Field(
        default="auto", description="The token put before each document: auto (BOS, else EOS), bos, eos, none (the "
        "first text token is context only), bos_every_window, or a literal token.")
    batch_size: int | str = Field(
        default="auto", description="Windows per forward pass, or auto (about 4096 tokens a pass on CPU; from free "
        "memory on CUDA). Halved and retried on out-of-memory.")
    device: str = Field(default="auto", description="auto (cuda, then mps, then cpu), cpu, mps, cuda or cuda:N.")
    seed: int = Field(default=0, description="torch's seed, set before scoring (scoring itself draws no random "
                      "numbers).")
    temperatures: list[float] = Field(
        default_factory=list, description="A temperature sweep (each T > 0; T = 1 is always added): entropy, NLL and "
        "calibration at each T, and the best T. Empty: no sweep.")
    best_temperature: Literal["interpolated", "exact"] = Field(
        default="interpolated", description="interpolated: from the streamed sweep, no extra pass; exact: extra "
        "scoring passes until the best T is bracketed to 1e-6.")
    min_k: float = Field(default=20.0, gt=0, le=100, description="Min-K% prob: the k% least likely tokens of each "
                         "document, a memorisation signal.")
    target_rank: bool = Field(default=False, description="GLTR target-rank buckets: the share of tokens whose target "
                              "ranks 1, 2–10, 11–100, 101–1000, >1000 at T = 1 (one comparison per vocabulary entry; "
                              "needs full logits).")
    compressors: list[Literal["gzip", "bz2", "xz", "zstd"]] = Field(
        default_factory=lambda: ["gzip", "bz2", "xz", "zstd"], description="Compression baselines on the same bytes; "
        "[] turns them off.")
    threads: int | Literal["auto"] = Field(
        default="auto", description="torch intra-op threads for the forward; auto: one per physical core. The "
        "per-token statistics always run on 1 thread.")

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
    """Where a run writes, and what."""

    dir: str = Field(default="results", description="The results folder, relative to the current directory; a "
                     "run writes `<dir>/<run_name>/<UTC timestamp>/`.")
    run_name: str | None = Field(default=None, description="Default: the config file's name (`stdin` for a config "
                                 "read from stdin).")
    baseline: str | None = Field(default=None, description="The model that Δ bits per byte is measured against in "
                                 "comparison tables; default: the first.")
    per_token: bool = Field(default=False, description="Write per-token NLL (and entropy and NLL at each swept T) as "
                            "Parquet shards while scoring.")
    plots: bool = Field(default=True, description="PNG plots and report.html.")


class RunConfig(_Strict):
    """A whole run: every model on every dataset, under one ``eval`` section."""

    models: list[ModelConfig] = Field(min_length=1, description="The models; every model runs on every dataset.")
    datasets: list[DatasetConfig] = Field(min_length=1, description="The datasets.")
    eval: EvalConfig = Field(default=EvalConfig(), description="How windows are cut and scored.")
    output: OutputConfig = Field(default=OutputConfig(), description="Where results go.")

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
