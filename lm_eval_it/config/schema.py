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

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeInt, field_validator, model_validator

from lm_eval_it.config.backends import LlamaCppOptions, OpenAIOptions
from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.config.named import NAMED, hub_ids, named_defaults
from lm_eval_it.config.strict import Strict
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


class ModelConfig(Strict):
    """One model: a hub id or a local folder, optionally a GGUF file in it."""

    path: str = Field(min_length=1, description="A hub id (`org/name`), a local folder, a `.gguf` file, or "
                      "`pkg://<installed package>` for a model shipped in a wheel. Relative to the config file's folder "
                      "when it starts with `.` or exists there.")
    name: str | None = Field(default=None, description="The name in tables and results; default: the GGUF file's "
                             "stem, else the last part of `path`.")
    backend: Literal["hf", "llama.cpp", "openai"] = Field(
        default="hf", description="What scores the model: `hf` = transformers (PyTorch; a GGUF is de-quantised), "
        "`llama.cpp` = the GGUF in llama.cpp with its own kernels and tokenizer (the `llamacpp` extra), `openai` = "
        "an OpenAI-compatible server (`openai:` section; `path` is then the local tokenizer; target log-probs only).")
    llama_cpp: LlamaCppOptions | None = Field(default=None, description="`backend: llama.cpp` options "
                                              "(n_batch, n_ubatch, n_gpu_layers, flash_attn, check_tokenizer).")
    openai: OpenAIOptions | None = Field(default=None, description="`backend: openai` options (base_url, model, "
                                         "api_key_env, timeout_s, concurrency, max_retries, prompt); needed with it.")
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
        if self.llama_cpp is not None and self.backend != "llama.cpp":
            raise ValueError(f"`llama_cpp:` options need `backend: llama.cpp` (got backend {self.backend!r})")
        if self.backend == "llama.cpp" and self.llama_cpp is None:
            self.llama_cpp = LlamaCppOptions()
        if self.openai is not None and self.backend != "openai":
            raise ValueError(f"`openai:` options need `backend: openai` (got backend {self.backend!r})")
        if self.backend == "openai" and self.openai is None:
            raise ValueError("`backend: openai` needs an `openai:` section with at least `base_url`")
        if not self.name:
            self.name = default_model_name(self.path, self.gguf_file)
        return self


def default_model_name(path: str, gguf_file: str | None = None) -> str:
    """The name a model gets without ``name:``: the GGUF file's stem, else the last part of its path."""
    base = Path(gguf_file).stem if gguf_file else str(path).rstrip("/").split("/")[-1]
    base = base[: -len(".gguf")] if base.lower().endswith(".gguf") else base  # path: a .gguf file
    return base.split("://")[-1]


class DatasetConfig(Strict):
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
            self.format = _format_from_suffix(self.path)
        _check_combination(self)
        if not self.name:
            self.name = _default_dataset_name(self)
        return self


def _globbed(d: DatasetConfig) -> bool:
    return bool(d.path) and any(c in d.path for c in "*?[")


def _format_from_suffix(path: str) -> str:
    """``format: auto`` for ``path``: from its suffix; a missing hub-id-like path or an unknown suffix is an error."""
    fmt = format_of(path)
    if fmt is None:
        hint = hub_id_hint(path)
        if hint:
            raise ValueError(f"path {path!r} does not exist{hint}")
        raise ValueError(f"cannot tell the format of {path!r} from its suffix; set format: text, jsonl, parquet or csv")
    return fmt


def _check_combination(d: DatasetConfig) -> None:
    """Keys that cannot go together: streaming with a local source or doc_regex, a glob of non-text, group_by."""
    if d.streaming and (d.path or d.builtin == "pydoc_topics"):
        raise ValueError("streaming: true reads a hub dataset; a local path: or pydoc_topics is read directly")
    if d.streaming and d.doc_regex:
        raise ValueError("doc_regex joins all rows before cutting them; it cannot be used with streaming: true")
    if _globbed(d) and d.format != "text":
        raise ValueError(f"a glob in path: reads text files (one group per file); {d.path!r} is {d.format}")
    if d.group_by:
        why = ("mode: stream makes one document" if d.mode == "stream" else
               "a text file has no fields; a glob in path: groups by file" if d.format == "text" else
               "pydoc_topics has no fields" if d.builtin == "pydoc_topics" else
               "streamed documents cannot carry a list of groups" if d.streaming else
               "doc_regex cuts documents across rows" if d.doc_regex else "")
        if why:
            raise ValueError(f"group_by {d.group_by!r} cannot be used here: {why}")


def _default_dataset_name(d: DatasetConfig) -> str:
    """A glob: its folder's name; a builtin: its name; a hub id: its last part, config and split; a file: its stem."""
    if _globbed(d):
        return Path(d.path).parent.name or "files"
    if d.builtin:
        return d.builtin
    if d.hub:
        return "/".join(x for x in (d.hub.split("/")[-1], d.config, d.split) if x)
    return Path(d.path).stem


class ViewsConfig(Strict):
    """The token-level views (report.html, comparison.html, ``lm-eval-it show``): which documents' per-token values
    are kept, bounded in memory and disk whether or not ``per_token`` is on."""

    enabled: bool = Field(default=True, description="Record the views' documents while scoring (`views-*.npz`).")
    documents: list[NonNegativeInt] = Field(default=[], description="Document indices (0-based, in the dataset) always recorded "
                                 "and shown, besides the 3 highest and 3 lowest in bits per byte and the flagged ones.")
    show: int = Field(default=3, ge=0, le=20, description="Documents shown at each end: the highest and lowest bits per "
                      "byte in report.html, the largest Δ bits per byte each way in comparison.html.")
    max_chars: int = Field(default=2500, ge=100, le=100_000, description="Characters of each document drawn; the "
                           "rest is cut (the statistics use every token).")
    record_tokens: int = Field(default=262_144, ge=0, description="Token budget of a whole recording: while the "
                               "dataset fits, every document is kept whole (top lists are then over the dataset); "
                               "beyond it only the documents the views can show, each cut to its drawn part.")


class OutputConfig(Strict):
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
    views: ViewsConfig = Field(default=ViewsConfig(), description="Token-level views of surprisal and of the "
                               "difference between models.")


class RunConfig(Strict):
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
