"""protocol: llama-perplexity, checked independently — the chunks llama.cpp's perplexity tool scores, and its PPL ± SE, against a brute-force
float64 recomputation on a tiny model (with and without a tokenizer that adds a BOS)."""

import math

import pytest
import torch
from tokenizers import processors

from conftest import byte_level_tokenizer, corpus, tiny_llama
from lm_eval_it import evaluate
from lm_eval_it.errors import UserError


def targets_per_chunk(n: int) -> int:
    return n - 1 - n // 2


def ppl_estimate(sums):
    """llama-perplexity's final estimate from (Σnll, Σnll², N), written out again here."""
    total, total2, count = sums
    mean = total / count
    return math.exp(mean), math.sqrt((total2 / count - mean * mean) / (count - 1)) * math.exp(mean)


def _tokenizer(adds_bos: bool):
    tok = byte_level_tokenizer()
    if adds_bos:
        tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tok.bos_token_id)])
    return tok


def brute_force(model, tok, text: str, n: int, limit: int | None) -> tuple[float, float, int]:
    """llama-perplexity's loop, in float64: tokenise with add_special, chunk, BOS in place of token 0, second half."""
    ids = tok(text, add_special_tokens=True)["input_ids"]
    adds = ids[:1] == [tok.bos_token_id] != tok(text, add_special_tokens=False)["input_ids"][:1]
    chunks = len(ids) // n if limit is None else min(limit, len(ids) // n)
    nll, nll2, count = 0.0, 0.0, 0
    first = n // 2
    for c in range(chunks):
        chunk = list(ids[c * n:(c + 1) * n])
        if adds:
            chunk[0] = tok.bos_token_id
        with torch.no_grad():
            logits = model(torch.tensor([chunk])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        for p in range(first, n - 1):
            v = -float(logp[p, chunk[p + 1]])
            nll, nll2, count = nll + v, nll2 + v * v, count + 1
    return nll, nll2, count


@pytest.mark.float64_reference
@pytest.mark.parametrize("adds_bos", [False, True])
def test_ppl_and_its_se_are_llama_perplexity_s_on_the_same_chunks(adds_bos):
    tok = _tokenizer(adds_bos)
    model = tiny_llama(len(tok))
    text = "\n".join(corpus()[:6])
    res = evaluate(model=model, tokenizer=tok, texts=[text], window=32, protocol="llama-perplexity", chunks=5,
                   compressors=[])
    lp = res.to_dict()["llama_perplexity"]
    nll, nll2, count = brute_force(model, tok, text, 32, 5)
    assert lp["scored_tokens"] == count == 5 * targets_per_chunk(32) and lp["chunks"] == 5
    ppl, se = ppl_estimate((nll, nll2, count))
    assert lp["ppl"] == pytest.approx(ppl, rel=1e-6)
    assert lp["ppl_se"] == pytest.approx(se, rel=1e-5)
    assert res.metrics["nll"] == pytest.approx(nll, rel=1e-6)


def test_bits_per_byte_counts_the_bytes_of_the_scored_targets_only():
    tok = _tokenizer(False)
    model = tiny_llama(len(tok))
    text = "\n".join(corpus()[:6])
    res = evaluate(model=model, tokenizer=tok, texts=[text], window=32, protocol="llama-perplexity", chunks=3,
                   compressors=[])
    ids = tok(text, add_special_tokens=False)["input_ids"]
    scored = [ids[c * 32 + p + 1] for c in range(3) for p in range(16, 31)]
    assert res.metrics["bytes"] == len(tok.decode(scored).encode("utf-8"))
    assert res.metrics["bits_per_byte"] == pytest.approx(res.metrics["nll"] / math.log(2) / res.metrics["bytes"])
    assert res.metrics["chars"] == 0 and math.isnan(res.metrics["bits_per_char"])  # not cut at chunk edges: none


def test_the_protocol_refuses_a_prefix_a_stride_and_too_short_a_text():
    tok = _tokenizer(False)
    model = tiny_llama(len(tok))
    with pytest.raises(UserError, match="protocol llama-perplexity"):
        evaluate(model=model, tokenizer=tok, texts=["x " * 200], window=32, protocol="llama-perplexity", prefix="bos")
    with pytest.raises(UserError, match="stride"):
        evaluate(model=model, tokenizer=tok, texts=["x " * 200], window=32, stride=8, protocol="llama-perplexity")
    with pytest.raises(UserError, match="no llama-perplexity chunk of n_ctx=32"):
        evaluate(model=model, tokenizer=tok, texts=["short"], window=32, protocol="llama-perplexity")
