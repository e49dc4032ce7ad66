"""Tokenization and the prefix token.

Documents are tokenized **without** special tokens; one prefix token is put in
front so that the first text token is scored too:

* ``auto``: BOS if the tokenizer has one, else EOS (as lm-eval does);
* ``bos`` / ``eos``: that token, an error if the tokenizer lacks it;
* ``none``: no prefix; the first text token is context only;
* anything else: a literal token of the vocabulary, e.g. ``"<|endoftext|>"``.

Example::

    >>> class Tok:  # the two attributes resolve_prefix reads
    ...     bos_token_id, eos_token_id, bos_token, eos_token = None, 0, None, "</s>"
    >>> resolve_prefix(Tok(), "auto")
    (0, 'eos:</s>')
"""

from __future__ import annotations

import logging

from .errors import UserError


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
    tf_logger = logging.getLogger("transformers.tokenization_utils_base")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # silence "sequence longer than max length": we window it
    try:
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    finally:
        tf_logger.setLevel(level)


def with_prefix(ids: list[int], prefix_id: int | None) -> list[int]:
    return ids if prefix_id is None else [prefix_id] + ids
