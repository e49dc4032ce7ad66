"""A Hugging Face tokenizer as the engine's :class:`~lm_eval_it.backends.base.Tokenizer`.

Every answer is today's: ids from :func:`~lm_eval_it.backends.tokenizer.encode`, byte lengths
from :func:`~lm_eval_it.backends.tokenizer.token_byte_lengths`, the facts from
:func:`~lm_eval_it.backends.tokenizer.tokenizer_info`; ``hf`` is the tokenizer itself.

Example::

    >>> class Tok:
    ...     bos_token_id, eos_token_id, bos_token, eos_token = 1, 2, "<s>", "</s>"
    >>> HFTokenizer(Tok()).bos_token_id, HFTokenizer(Tok()).eos_token
    (1, '</s>')
"""

from __future__ import annotations

import numpy as np

from lm_eval_it.backends.tokenizer import encode, token_byte_lengths, tokenizer_info


class HFTokenizer:
    """The engine's tokenizer facts, read from a ``transformers`` tokenizer."""

    def __init__(self, hf):
        self.hf = hf

    @property
    def bos_token_id(self) -> int | None:
        return self.hf.bos_token_id

    @property
    def eos_token_id(self) -> int | None:
        return self.hf.eos_token_id

    @property
    def bos_token(self) -> str | None:
        return self.hf.bos_token

    @property
    def eos_token(self) -> str | None:
        return self.hf.eos_token

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        return encode(self.hf, texts)

    def decode(self, ids: list[int], clean_up_tokenization_spaces: bool = False) -> str:
        return self.hf.decode(ids, clean_up_tokenization_spaces=clean_up_tokenization_spaces)

    def byte_lengths(self) -> np.ndarray:
        return token_byte_lengths(self.hf)

    def get_vocab(self) -> dict[str, int]:
        return self.hf.get_vocab()

    def info(self) -> dict:
        return tokenizer_info(self.hf)

    def __len__(self) -> int:
        return len(self.hf)
