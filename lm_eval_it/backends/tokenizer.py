"""Tokenization and the prefix token.

``encode`` and ``token_byte_lengths`` take a backend's
:class:`~lm_eval_it.backends.base.Tokenizer` (which answers for itself) or a Hugging Face
tokenizer (read here: the Hugging Face backend's ``Tokenizer`` is these functions).

Documents are tokenized **without** special tokens; one prefix token is put in
front so that the first text token is scored too:

* ``auto``: BOS if the tokenizer has one, else EOS (as lm-eval does);
* ``bos`` / ``eos``: that token, an error if the tokenizer lacks it;
* ``none``: no prefix; the first text token is context only;
* ``bos_every_window``: BOS in front, and again at the start of every later
  window (for models trained to always see BOS first, like Gemma); each
  window then holds ``window - 1`` text tokens;
* anything else: a literal token of the vocabulary, e.g. ``"<|endoftext|>"``.

Example::

    >>> class Tok:  # the two attributes resolve_prefix reads
    ...     bos_token_id, eos_token_id, bos_token, eos_token = None, 0, None, "</s>"
    >>> resolve_prefix(Tok(), "auto")
    (0, 'eos:</s>')
"""

from __future__ import annotations

import json
import logging
import re

import numpy as np

from lm_eval_it.backends.base import Tokenizer
from lm_eval_it.errors import UserError


def resolve_prefix(tokenizer, prefix: str) -> tuple[int | None, str]:
    """Return ``(token id or None, description)`` for the configured prefix."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    if prefix == "none":
        return None, "none"
    if prefix == "auto":
        if bos is not None:
            return bos, f"bos:{tokenizer.bos_token}"
        if eos is not None:
            return eos, f"eos:{tokenizer.eos_token}"
        raise UserError("eval.prefix: 'auto' needs a tokenizer with a BOS or EOS token; this one has neither. "
                        "Set prefix to 'none' or to a literal token")
    if prefix == "bos_every_window":
        if bos is None:
            raise UserError("eval.prefix: 'bos_every_window' needs a tokenizer with a BOS token; use 'auto'")
        return bos, f"bos_every_window:{tokenizer.bos_token}"
    if prefix in ("bos", "eos"):
        tid = bos if prefix == "bos" else eos
        if tid is None:
            raise UserError(f"eval.prefix: got {prefix!r}, but the tokenizer has no {prefix.upper()} token; use 'auto'")
        return tid, f"{prefix}:{getattr(tokenizer, prefix + '_token')}"
    vocab = tokenizer.get_vocab()
    if prefix not in vocab:
        raise UserError(f"eval.prefix: got {prefix!r}, which is not a single token of this tokenizer; "
                        "expected auto, bos, eos, none or a token of the vocabulary")
    return vocab[prefix], f"literal:{prefix}"


def encode(tokenizer, texts: list[str]) -> list[list[int]]:
    """Token ids of each text, without special tokens."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.encode_texts(texts)
    tf_logger = logging.getLogger("transformers.tokenization_utils_base")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # silence "sequence longer than max length": we window it
    try:
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                                                     return_token_type_ids=False)["input_ids"]]
    finally:
        tf_logger.setLevel(level)


def with_prefix(ids: list[int], prefix_id: int | None) -> list[int]:
    return ids if prefix_id is None else [prefix_id] + ids


def tokenizer_info(tokenizer) -> dict:
    """What the tokenizer does by itself, and a fingerprint of its vocabulary and rules.

    ``adds_bos``/``adds_eos`` tell whether plain ``tokenizer(text)`` inserts them; the
    harness never relies on it (it encodes without special tokens and adds one prefix),
    so a BOS is never duplicated.
    """
    import hashlib

    probe = tokenizer("a", add_special_tokens=True)["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    spec = backend.to_str() if backend is not None else repr(sorted(tokenizer.get_vocab().items()))
    return {
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "bos": tokenizer.bos_token,
        "eos": tokenizer.eos_token,
        "adds_bos": bool(tokenizer.bos_token_id is not None and probe[:1] == [tokenizer.bos_token_id] != plain[:1]),
        "adds_eos": bool(tokenizer.eos_token_id is not None and probe[-1:] == [tokenizer.eos_token_id] != plain[-1:]),
        "fingerprint": hashlib.sha256(spec.encode()).hexdigest(),
    }


def roundtrip_report(texts: list[str], decoded: list[str], sample_context: int = 20) -> dict:
    """Compare each text with decode(encode(text)); count lossy documents and bytes affected.

    ``deleted_bytes`` are UTF-8 bytes of the text missing from the decoded text,
    ``inserted_bytes`` bytes of the decoded text absent from the text (a replaced
    span counts on both sides); ``lossy_bytes`` is their sum.

    >>> r = roundtrip_report(["a  b", "ok", "Hello"], ["a b", "ok", " Hello"])
    >>> r["lossy_documents"], r["deleted_bytes"], r["inserted_bytes"], r["lossy_bytes"], r["sample"]["document"]
    (2, 1, 1, 2, 0)
    """
    import difflib

    lossy, deleted, inserted, sample = 0, 0, 0, None
    for i, (a, b) in enumerate(zip(texts, decoded)):
        if a == b:
            continue
        lossy += 1
        ops = difflib.SequenceMatcher(None, a, b, autojunk=len(a) > 20000).get_opcodes()
        changed = [op for op in ops if op[0] != "equal"]
        deleted += sum(len(a[i1:i2].encode()) for _, i1, i2, _, _ in changed)
        inserted += sum(len(b[j1:j2].encode()) for _, _, _, j1, j2 in changed)
        if sample is None and changed:
            _, i1, i2, j1, j2 = changed[0]
            c = sample_context
            sample = {"document": i, "offset": i1, "text": a[max(0, i1 - c): i2 + c],
                      "decoded": b[max(0, j1 - c): j2 + c]}
    return {"lossy_documents": lossy, "lossy_bytes": deleted + inserted, "deleted_bytes": deleted,
            "inserted_bytes": inserted, "sample": sample}


_B2U: dict[str, int] | None = None


def _byte_level_alphabet() -> dict[str, int]:
    """The GPT-2 byte-level alphabet: printable character → the byte it stands for."""
    global _B2U
    if _B2U is None:
        keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
        chars, extra = {}, 0
        for b in range(256):
            if b in keep:
                chars[chr(b)] = b
            else:
                chars[chr(256 + extra)] = b
                extra += 1
        _B2U = chars
    return _B2U


def token_byte_lengths(tokenizer) -> np.ndarray:
    """UTF-8 bytes of every token id's text (0 for special tokens), for byte-level BPE and SentencePiece."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer.byte_lengths()
    vocab = tokenizer.get_vocab()
    out = np.zeros(max(len(tokenizer), max(vocab.values(), default=0) + 1), np.int32)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = json.dumps(json.loads(backend.to_str()).get("decoder")) if backend is not None else ""
    byte_level = '"ByteLevel"' in decoder
    alphabet = _byte_level_alphabet()
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    for piece, i in vocab.items():
        if i in special:
            continue
        if byte_level and all(c in alphabet for c in piece):
            out[i] = len(piece)
        elif re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
            out[i] = 1
        else:
            out[i] = len(piece.replace("\u2581", " ").encode("utf-8"))
    return out
