"""What the engine needs from a model backend, and nothing more.

A backend loads one configured model and gives the engine:

* a :class:`Tokenizer`: ids of texts, UTF-8 bytes per id, BOS/EOS, the vocabulary and a fingerprint;
* its maximum context, device and dtype (:class:`Backend`);
* a :class:`WindowScorer`: a batch of windows in, a slice of scored positions at a time out,
  each with float32 logits (``Capability.FULL_LOGITS``) or, from a backend that has only
  ``Capability.TARGET_LOGPROBS``, ``None`` in their place and only the targets' NLL;
* :class:`ModelFacts`, the results.json ``models`` entry.

Capabilities are explicit and readable from the backend *class*: a statistic names the ones it
needs, a backend the ones it has, and :func:`unmet` gives the one line that refuses a run
before anything loads.

Example::

    >>> Capability.FULL_LOGITS.value, Capability.TARGET_LOGPROBS in {Capability.TARGET_LOGPROBS}
    ('full_logits', True)
    >>> unmet({"temperature": {Capability.FULL_LOGITS}, "context": {Capability.TARGET_LOGPROBS}},
    ...       {Capability.TARGET_LOGPROBS}, "openai")
    "statistic 'temperature' needs full_logits, which backend 'openai' does not give (it gives target_logprobs)"
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import (
    Any,
    ClassVar,
    Iterable,
    Iterator,
    Mapping,
    Protocol,
    runtime_checkable,
)


class Capability(str, Enum):
    """What a backend can give for each scored position."""

    FULL_LOGITS = "full_logits"  # (rows × vocab) float32 logits: every statistic can run
    TARGET_LOGPROBS = "target_logprobs"  # only log p(target): NLL, bits per byte, context curve, Min-K%


@runtime_checkable
class Tokenizer(Protocol):
    """The tokenizer facts the engine reads (``engine.prepare``, the runner, KL's same-vocab check).

    Documents are encoded without special tokens; the engine puts its own prefix in front
    (:mod:`lm_eval_it.backends.tokenizer`). The BOS/EOS names are Hugging Face's, so a
    Hugging Face tokenizer reads the same in :func:`~lm_eval_it.backends.tokenizer.resolve_prefix`.
    """

    bos_token_id: int | None
    eos_token_id: int | None
    bos_token: str | None
    eos_token: str | None

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""

    def decode(self, ids: list[int], clean_up_tokenization_spaces: bool = False) -> str:
        """The text of ``ids`` as the tokenizer gives it back (the round-trip check)."""

    def byte_lengths(self) -> Any:
        """UTF-8 bytes of every id's text (an int32 numpy array; 0 for special tokens)."""

    def get_vocab(self) -> dict[str, int]:
        """Piece → id: two models' KL needs identical vocabularies."""

    def info(self) -> dict:
        """class, vocab_size, bos, eos, adds_bos, adds_eos, fingerprint (results.json ``tokenizer``)."""

    def __len__(self) -> int:
        """Vocabulary size, special tokens included."""


ScoredSlice = tuple  # (i0, i1, float32 logits or None, reference logits or None, NLL in nats)


@runtime_checkable
class WindowScorer(Protocol):
    """What ``engine.execute`` and ``engine.refine`` call: one batch of windows, scored a slice at a time.

    ``chunks(ids, mask, rows, cols, targets)`` gets a right-padded ``(batch, width)`` id tensor, an
    attention mask or ``None`` when every window has the same length, and the scored positions
    (``rows[i]``, ``cols[i]``) whose next token is ``targets[i]``. It yields
    ``(i0, i1, logits, reference_logits, nll)`` for positions ``i0:i1`` in order: float32
    ``(i1 - i0, vocab)`` logits, or ``None`` from a target-logprob-only backend; the reference
    model's logits at the same positions (KL) or ``None``; ``nll = −log p(target)`` in float32 nats.
    """

    vocab: int  # width of a logits row
    device: str  # where the inputs go
    reference: "WindowScorer | None"  # a second model scored in lockstep (KL), or None

    def chunks(self, ids, mask, rows, cols, targets) -> Iterator[ScoredSlice]:
        ...


@dataclass(frozen=True)
class ModelFacts:
    """One model as it ran: the results.json ``models`` entry (:meth:`entry`, keys in today's order)."""

    name: str
    fingerprint: str
    source: dict
    dtype: str
    device: str
    max_positions: int | None
    load_seconds: float
    vocab_size: int
    tokenizer: dict
    split_head: bool | None  # Hugging Face: the LM head ran apart from the body; None where it has no meaning
    tokenizer_fingerprint: str | None
    backend: str | None = None  # the backend's kind (``Backend.kind``): hf, llama.cpp, …

    def entry(self) -> dict:
        return {"name": self.name, "fingerprint": self.fingerprint, "source": self.source, "dtype": self.dtype,
                "device": self.device, "max_positions": self.max_positions, "load_seconds": self.load_seconds,
                "vocab_size": self.vocab_size, "tokenizer": self.tokenizer, "split_head": self.split_head,
                "tokenizer_fingerprint": self.tokenizer_fingerprint, "backend": self.backend}


@runtime_checkable
class Backend(Protocol):
    """One loaded model. ``kind`` and ``capabilities`` are class attributes: known before anything loads.

    Loading is the class's ``load(cfg: ModelConfig, device: str)`` classmethod (see
    :mod:`lm_eval_it.backends.registry`); what is not in this protocol the engine never touches.
    """

    kind: ClassVar[str]  # the config's models[].backend
    capabilities: ClassVar[frozenset[Capability]]

    name: str
    device: str
    dtype: str
    max_positions: int | None  # the longest window it takes, None if it does not say
    fingerprint: str  # the model's content (weights and config)
    tokenizer_fingerprint: str
    tokenizer: Tokenizer

    def scorer(self, reference: "WindowScorer | None" = None) -> WindowScorer:
        """The engine's scorer; with ``reference`` (another backend's scorer) both score each batch (KL)."""

    def auto_batch_size(self, window: int) -> int:
        """Windows per batch when ``eval.batch_size`` is ``auto``."""

    def facts(self, scorer: WindowScorer) -> ModelFacts:
        """The results.json ``models`` entry for this model scored by ``scorer``."""


def unmet(needs: Mapping[str, Iterable[Capability]], capabilities: Iterable[Capability],
          backend: str = "?") -> str | None:
    """One line naming what ``needs`` (statistic → capabilities) asks of a backend that it lacks, or ``None``.

    >>> unmet({"kl": {Capability.FULL_LOGITS}}, {Capability.FULL_LOGITS}, "hf") is None
    True
    >>> unmet({"temperature": [Capability.FULL_LOGITS], "kl": [Capability.FULL_LOGITS]}, [], "x")
    "statistics 'kl', 'temperature' need full_logits, which backend 'x' does not give (it gives nothing)"
    """
    have = {Capability(c) for c in capabilities}
    lacking: dict[str, list[str]] = {}
    for stat, wanted in needs.items():
        for cap in sorted({Capability(c) for c in wanted} - have, key=lambda c: c.value):
            lacking.setdefault(cap.value, []).append(stat)
    if not lacking:
        return None
    parts = [f"{'statistic' if len(stats) == 1 else 'statistics'} {', '.join(repr(s) for s in sorted(stats))} "
             f"{'needs' if len(stats) == 1 else 'need'} {cap}" for cap, stats in sorted(lacking.items())]
    gives = ", ".join(sorted(c.value for c in have)) or "nothing"
    return f"{'; '.join(parts)}, which backend {backend!r} does not give (it gives {gives})"
