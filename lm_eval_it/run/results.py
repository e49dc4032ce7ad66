"""The results document (results.json, schema 2) as typed models, and the one builder both the CLI and
``evaluate()`` use.

A run writes one :class:`ResultsDocument`: run facts, the models and datasets, and one
:class:`DatasetResult` row per model × dataset. Fixed shapes are typed (eval protocol, timing,
tokenizer, metrics, intervals, per-document rows, ``kl_llama``); the statistic blocks (``temperature``, ``kl``,
``context_length``, ``memorisation``, ``groups``, ``compression``, ``target_rank``, ``llama_perplexity`` and any block a
statistic adds) are open dicts. A serialised document holds exactly the keys that were built
(``exclude_unset``), so results.json only ever gains fields. Non-finite numbers are written as
``null`` (``report.summary.write_json``), so every real-valued field also accepts ``null``.
``python -m lm_eval_it.run.results`` prints the JSON Schema (checked in as results/schema.json).

Example::

    >>> t = Timing(seconds=2.0, scoring_seconds=1.0, tokens_scored_here=10, tokens_per_second=10.0)
    >>> t.model_dump()
    {'seconds': 2.0, 'scoring_seconds': 1.0, 'tokens_scored_here': 10, 'tokens_per_second': 10.0}
    >>> Timing(seconds=2, scoring_seconds=1, tokens_scored_here=10, tokens_per_second=None).seconds  # ints kept
    2
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, WithJsonSchema, create_model
from typing_extensions import NotRequired, TypedDict

from lm_eval_it.stats.kl.llama import FIELDS as KL_LLAMA_FIELDS

SCHEMA = 2

# A real number as it was computed (an int stays an int, so the JSON text is unchanged); NaN/inf are written null.
Real = Annotated[int | float | None, WithJsonSchema({"type": ["number", "null"]})]
Block = Annotated[dict[str, Any] | None, WithJsonSchema({"type": ["object", "null"]})]
OPEN = ConfigDict(extra="allow", protected_namespaces=(), populate_by_name=True)


class Tokenizer(BaseModel):
    """What the tokenizer does by itself (``backends.tokenizer.tokenizer_info``)."""

    model_config = OPEN
    class_: str = Field(alias="class", description="the tokenizer's Python class")
    vocab_size: int = Field(description="entries, special tokens included")
    bos: str | None
    eos: str | None
    adds_bos: bool = Field(description="plain tokenizer(text) inserts BOS (the harness never relies on it)")
    adds_eos: bool
    fingerprint: str = Field(description="sha256 of the vocabulary and rules")
    hf_agreement: dict | None = Field(default=None, description="backend llama.cpp with check_tokenizer: documents "
                                      "tokenised, how many the Hugging Face tokenizer of the same GGUF cuts otherwise, "
                                      "and the first (up to 10) with a preview")


class EvalProtocol(BaseModel):
    """The window protocol that ran for this model × dataset."""

    model_config = OPEN
    window: int = Field(description="tokens per forward pass that ran (after byte conversion and clamping)")
    stride: int = Field(description="text tokens each later window advances (the planned stride)")
    window_unit: str = Field(description="tokens or bytes, as configured")
    batch_size: int
    prefix: str = Field(description="the prefix that ran: bos:<t>, eos:<t>, none, literal:<t>, bos_every_window:<t>")
    prefix_token_id: int | None = Field(description="its id (null for none)")
    windows: int = Field(description="windows in the plan")
    min_context: int = Field(description="the fewest input tokens any scored target was predicted from")
    configured_window: int = Field(description="the config's window")
    configured_stride: int | None = Field(description="the config's stride")
    text_tokens_per_window: int = Field(description="window − 1 with prefix: bos_every_window, else window")
    protocol: str = Field("strided", description="strided or llama-perplexity")
    n_ctx: int | None = Field(None, description="llama-perplexity: the chunk length n_ctx (null for strided)")
    chunks: int | None = Field(None, description="llama-perplexity: the configured chunk limit (null: all)")


class Metrics(TypedDict):
    """Sums over documents, then every ratio divided once (``stats.metrics.summarize``)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    nll: Real
    tokens: int
    bytes: int
    words: int
    chars: int
    docs: int
    nll_per_token: Real
    token_perplexity: Real
    bits_per_token: Real
    bits_per_byte: Real
    byte_perplexity: Real
    bits_per_word: Real
    word_perplexity: Real
    bits_per_char: Real
    tokens_per_byte: Real
    tokens_per_word: Real
    bytes_per_token: Real


Interval = Annotated[list[Real] | None, Field(description="[low, high]; null with fewer than 2 scored documents")]


class Intervals(TypedDict):
    """95% linearised t intervals over documents (``stats.intervals.metric_intervals``)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    bits_per_token: Interval
    token_perplexity: Interval
    bits_per_byte: Interval
    bits_per_word: Interval
    bits_per_char: Interval
    method: Annotated[str, Field(description="linearised_t")]
    level: Annotated[Real, Field(description="0.95")]
    documents: Annotated[int, Field(description="documents that scored at least one token (the sample)")]
    few_documents: Annotated[bool, Field(description="fewer than 10 scored documents: none called significant")]
    documents_without_scored_tokens: Annotated[int, Field(description="counted, left out of every interval")]
    se: Annotated[dict[str, Real], Field(description="standard error (bits per unit) of each metric's interval")]
    df: Annotated[dict[str, Real], Field(description="Bell–McCaffrey degrees of freedom of each interval")]


class PerDocument(TypedDict):
    """One document's totals (NLL in nats, summed in float64) and signals."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]
    index: int
    nll: Annotated[Real, Field(description="nats, summed in float64")]
    tokens: int
    bytes: int
    words: int
    chars: int
    min_k_logprob: NotRequired[Real]
    zlib_ratio: NotRequired[Real]
    zlib_ratio_z: NotRequired[Real]
    min_k_z: NotRequired[Real]
    group: NotRequired[str]


class Roundtrip(BaseModel):
    """Whether decode(encode(text)) gives the text back (losslessness)."""

    model_config = OPEN
    lossy_documents: int
    lossy_bytes: int = Field(description="inserted plus deleted bytes")
    sample: dict[str, Any] | None = Field(description="one lossy example: text and decoded")
    inserted_bytes: int
    deleted_bytes: int


class Timing(BaseModel):
    """Wall time of this model × dataset."""

    model_config = OPEN
    seconds: Real = Field(description="tokenising, scoring and summarising")
    scoring_seconds: Real
    tokens_scored_here: int = Field(description="tokens scored by this process (a resume's earlier ones not)")
    tokens_per_second: Real = Field(description="tokens_scored_here / scoring_seconds")


class PerToken(BaseModel):
    """The per-token parquet shards (``output.per_token: true``)."""

    model_config = OPEN
    folder: str
    shards: int = Field(description="every rank's shards")
    rows: int


KLLlama = create_model(
    "KLLlama", __config__=OPEN, __doc__=(
        "Every statistic llama-perplexity --kl-divergence prints, by its formulas (stats.kl.llama): Q is the candidate, "
        "base the compare_to reference; _se is llama.cpp's uncertainty; Δp fields are fractions (summary.md prints %). "
        "KLD is exact from both models' float32 logits; percentiles come from fixed histograms within the bound "
        "`method` states; min, max and means are exact."),
    count=(int, Field(description="scored tokens")),
    method=(str, Field(description="how the numbers were found, and how they differ from llama.cpp's")),
    **{k: (Real, Field(description=d)) for k, d in KL_LLAMA_FIELDS.items()})


class DatasetResult(BaseModel):
    """One model × dataset: metrics (sum then divide), intervals, per-document rows, and the optional blocks.

    Unknown statistic blocks are kept (``extra="allow"``). ``folder`` is the run folder when one was written.
    """

    model_config = OPEN
    model: str
    dataset: str
    model_fingerprint: str
    dataset_fingerprint: str
    tokenizer: Tokenizer
    eval: EvalProtocol
    metrics: Metrics
    intervals: Intervals
    roundtrip: Roundtrip
    temperature: Block = Field(None, description="the temperature sweep, best T and calibration")
    kl: Block = Field(None, description="KL against the compare_to reference")
    kl_reference: str | None = Field(None, description="the reference model of kl")
    kl_llama: KLLlama | None = Field(None, description="llama-perplexity --kl-divergence's statistics, "
                                                        "against kl_reference")
    context_length: Block = Field(None, description="NLL by context length: bins, gains, coverage")
    compression: Block = Field(None, description="gzip/bz2/xz/zstd baselines in bits per byte")
    memorisation: Block = Field(None, description="Min-K% and zlib-ratio flags")
    groups: Block = Field(None, description="per-group metrics, micro and macro bits/byte")
    target_rank: Block = Field(None, description="the share of scored tokens by target rank (GLTR buckets)")
    llama_perplexity: Block = Field(None, description="protocol llama-perplexity: llama.cpp's final estimate "
                                    "{ppl, ppl_se, nll_mean, nll_se, chunks, scored_tokens, n_ctx, bos_replaced, how}")
    documents: int = Field(description="documents in the dataset")
    timing: Timing
    per_token: PerToken | None = Field(description="the per-token output, when asked for")
    views: Block = Field(None, description="the token-level views' recording (output.views): {file, documents, "
                         "complete, tokens, max_chars}; file is views-<model>-<dataset>.npz in the run folder")
    resumed_documents: int = Field(description="documents taken from the checkpoint")
    per_document: list[PerDocument]
    _folder: Path | None = PrivateAttr(None)

    @property
    def folder(self) -> Path | None:
        return self._folder

    @property
    def bits_per_byte(self) -> float:
        return self.metrics["bits_per_byte"]

    @property
    def perplexity(self) -> float:
        return self.metrics["token_perplexity"]

    @property
    def row(self) -> dict:
        return self.to_dict()

    def to_dict(self) -> dict:
        """The same dictionary as one entry of results.json's ``results``."""
        return self.model_dump(by_alias=True, exclude_unset=True)

    @classmethod
    def from_row(cls, row: dict | BaseModel, folder: Path | None = None):
        out = cls.model_validate(row.model_dump(by_alias=True, exclude_unset=True) if isinstance(row, BaseModel)
                                 else row)
        out._folder = folder
        return out


class ModelEntry(BaseModel):
    """One model as loaded."""

    model_config = OPEN
    name: str
    fingerprint: str = Field(description="sha256 over every byte of the weights")
    source: dict[str, Any]
    dtype: str = Field(description="as loaded: float32, bfloat16, int8-dynamic(float32), …")
    device: str
    max_positions: int | None = None
    load_seconds: Real = None
    vocab_size: int | None = Field(None, description="rows of the output layer")
    tokenizer: Tokenizer | None = None
    split_head: bool | None = None
    tokenizer_fingerprint: str | None = Field(None, description="sha256 over the tokenizer files")
    backend: str | None = Field(None, description="the backend that ran it (models[].backend): hf, llama.cpp, openai")


class DatasetEntry(BaseModel):
    """One dataset as read."""

    model_config = OPEN
    name: str
    fingerprint: str
    source: dict[str, Any]
    documents: int | None = Field(description="documents in the dataset (counted while streaming)")
    skipped_empty: int | None = Field(description="empty documents skipped")


class Provenance(BaseModel):
    """What produced the result."""

    model_config = OPEN
    versions: dict[str, str | None]
    python: str
    git_commit: str | None = Field(description="with +dirty for local changes")
    platform: str
    processor: str
    cpu_count: int | None
    torch_threads: int
    device: str
    gpu: str | None = None
    world_size: int | None = Field(None, description="processes (torchrun)")


class ResultsDocument(BaseModel):
    """results.json."""

    model_config = OPEN
    schema_: int = Field(SCHEMA, alias="schema", description="2: typed; fields are only ever added")
    complete: bool = Field(True, description="every document was scored; written last, atomically")
    run_name: str
    created: str = Field(description="UTC, ISO 8601")
    wall_seconds: Real
    config: dict[str, Any] = Field(description="the resolved config")
    raw_config: dict[str, Any] = Field(description="the config as written")
    provenance: Provenance
    resumed_documents: int
    models: list[ModelEntry]
    datasets: list[DatasetEntry]
    results: list[DatasetResult]
    comparison: list[dict[str, Any]] | None = Field(None, description="with several models")

    def to_dict(self) -> dict:
        """The dictionary results.json holds (``report.summary.write_json`` writes NaN/inf as null)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


def json_schema() -> dict:
    """The JSON Schema of results.json (results/schema.json)."""
    return ResultsDocument.model_json_schema(by_alias=True)


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=1))
