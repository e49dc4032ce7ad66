"""A document the model was fine-tuned on comes out on top of both memorisation signals."""

import math

import numpy as np
import torch
from conftest import corpus, tiny_llama

from lm_eval_it import evaluate
from lm_eval_it.stats.memorisation.signals import zlib_bits


def test_fine_tuned_document_tops_zlib_ratio_and_min_k(tiny):
    _, tok = tiny
    model = tiny_llama(len(tok), seed=5)
    texts = [t[:600] for t in corpus()[20:32]]
    target = 7
    ids = tok(texts[target], return_tensors="pt", add_special_tokens=False)["input_ids"]
    ids = torch.cat([torch.tensor([[tok.bos_token_id]]), ids], 1)[:, :200]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(60):
        loss = model(input_ids=ids, labels=ids).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    res = evaluate(model=model, tokenizer=tok, texts=texts, window=256, stride=256, device="cpu", batch_size=4)
    rows = res.per_document
    zr = [r["zlib_ratio"] for r in rows]
    mk = [r["min_k_logprob"] for r in rows]
    assert int(np.argmin(zr)) == target and int(np.argmax(mk)) == target
    flagged = res.memorisation["flagged"]
    assert flagged and flagged[0]["doc"] == target and set(flagged[0]["flags"]) == {"zlib_ratio", "min_k"}
    assert flagged[0]["excerpt"] == texts[target][:200]
    # the definitions, by hand for the flagged document
    r = rows[target]
    assert r["zlib_ratio"] == r["nll"] / math.log(2) / zlib_bits(texts[target])
    assert r["min_k_logprob"] <= 0 and r["min_k_logprob"] > min(mk[:target] + mk[target + 1:])
