"""The llama.cpp backend's tokenizer: the GGUF file's own, as llama.cpp runs it.

Documents are tokenised without special tokens and without special-token parsing (a literal
``<|endoftext|>`` in the text is text). Each id's UTF-8 byte length is the length of its
piece as llama.cpp renders it (``llama_token_to_piece``, specials not rendered: 0 bytes),
so bits per byte sums exactly the bytes the tokens stand for.

Example (needs a GGUF file)::

    tok = LlamaTokenizer(LlamaModel(path))
    tok.encode_texts(["Hello world"]), tok.byte_lengths()[tok.encode_texts(["Hello"])[0]].sum()  # … , 5
"""

from __future__ import annotations

import hashlib

import numpy as np


class LlamaTokenizer:
    """The engine's tokenizer facts (:class:`~lm_eval_it.backends.base.Tokenizer`) from a llama.cpp vocabulary."""

    def __init__(self, model, check=None):
        self.model = model
        self.check = check  # a Hugging Face tokenizer of the same GGUF: every document is compared with it
        self.agreement = {"documents": 0, "differing": 0, "first_differing": []}
        self.bos_token_id, self.eos_token_id = model.bos(), model.eos()
        self.bos_token = model.text(self.bos_token_id) if self.bos_token_id is not None else None
        self.eos_token = model.text(self.eos_token_id) if self.eos_token_id is not None else None
        self._pieces = [model.piece(t) for t in range(model.n_vocab)]
        self._lengths = np.fromiter((len(p) for p in self._pieces), dtype=np.int32, count=model.n_vocab)
        texts = [model.text(t) for t in range(model.n_vocab)]
        self._vocab = {text: t for t, text in enumerate(texts)}
        digest = hashlib.sha256()  # the vocabulary's texts in id order, and the pre-tokenizer's name
        for text in texts:
            digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
        digest.update((model.meta("tokenizer.ggml.pre") or "").encode())
        self._fingerprint = digest.hexdigest()

    def encode_texts(self, texts: list[str]) -> list[list[int]]:
        ids = [self.model.tokenize(t) for t in texts]
        if self.check is not None:
            self._compare(texts, ids)
        return ids

    def _compare(self, texts: list[str], ids: list[list[int]]) -> None:
        """Count the documents the Hugging Face tokenizer cuts otherwise; keep the first few (a preview each)."""
        theirs = self.check.encode_texts(texts)
        seen = self.agreement
        for text, mine, other in zip(texts, ids, theirs):
            seen["documents"] += 1
            if mine != other:
                seen["differing"] += 1
                if len(seen["first_differing"]) < 10:
                    at = next((i for i, (a, b) in enumerate(zip(mine, other)) if a != b), min(len(mine), len(other)))
                    seen["first_differing"].append({"preview": text[:40], "llama_cpp_tokens": len(mine),
                                                    "hf_tokens": len(other), "first_difference_at_token": at})

    def decode(self, ids: list[int], clean_up_tokenization_spaces: bool = False) -> str:
        return b"".join(self._pieces[i] for i in ids).decode("utf-8", "replace")

    def piece_bytes(self, token: int) -> bytes:
        return self._pieces[token]

    def byte_lengths(self) -> np.ndarray:
        return self._lengths

    def get_vocab(self) -> dict[str, int]:
        return dict(self._vocab)

    def info(self) -> dict:
        return {"class": "llama.cpp", "vocab_size": self.model.n_vocab, "bos": self.bos_token, "eos": self.eos_token,
                "adds_bos": self.model.adds_bos(), "adds_eos": self.model.adds_eos(),
                "fingerprint": self._fingerprint,
                **({"hf_agreement": dict(self.agreement)} if self.check is not None else {})}

    def __len__(self) -> int:
        return self.model.n_vocab
