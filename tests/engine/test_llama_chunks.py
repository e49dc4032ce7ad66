"""protocol llama-perplexity: the chunk plan (with and without BOS), prepare's counts, its errors, a BOS run."""

import copy
import math

import numpy as np
import pytest
import torch
from tokenizers.processors import TemplateProcessing

from lm_eval_it.api import evaluate
from lm_eval_it.backends.tokenizer import encode, token_byte_lengths
from lm_eval_it.config.schema import EvalConfig
from lm_eval_it.engine.prepare import prepare
from lm_eval_it.engine.windows import Window, WindowPlan, plan_chunks
from lm_eval_it.errors import UserError

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 5, "x", "Zwölf Boxkämpfer jagen Viktor über den Deich. " * 3]


def targets_of(seq, plan, bos_id=None):
    """(inputs, targets) of each window as the executor builds them: a BOS in front of a later chunk."""
    out = []
    for w in plan:
        inp = list(seq[w.start:w.start + w.length])
        if bos_id is not None and w.start > 0:
            inp = [bos_id] + inp
        out.append((inp, list(seq[w.start + w.score_from + 1:w.start + w.length + 1])))
    return out


def test_without_bos_chunks_are_disjoint_and_score_their_second_half():
    seq = list(range(100, 121))  # 21 ids, n_ctx 8: 2 chunks, 5 dropped
    plan = plan_chunks(len(seq), 8, bos=False)
    assert plan == [Window(0, 7, 4), Window(8, 7, 4)]
    assert targets_of(seq, plan) == [(list(range(100, 107)), [105, 106, 107]),
                                     (list(range(108, 115)), [113, 114, 115])]
    assert sum(w.n_scored for w in plan) == 2 * (8 - 1 - 4)


def test_with_bos_each_chunks_first_token_is_replaced_by_bos():
    seq = [0] + list(range(100, 120))  # S = [BOS] + 20 text ids = 21: 2 chunks of 8
    plan = plan_chunks(len(seq), 8, bos=True)
    # chunk 1 is S[8:16] with S[8] replaced by BOS: input BOS, S[9..14]; targets S[13..15]
    assert targets_of(seq, plan, bos_id=0) == [([0] + list(range(100, 106)), [104, 105, 106]),
                                               ([0] + list(range(108, 114)), [112, 113, 114])]
    assert [len(i) for i, _ in targets_of(seq, plan, 0)] == [7, 7]  # n_ctx - 1 inputs, as llama.cpp


def test_the_chunk_limit_and_a_short_sequence():
    assert len(plan_chunks(40, 8, bos=False, max_chunks=2)) == 2
    assert plan_chunks(7, 8, bos=True) == [] and plan_chunks(40, 8, True, max_chunks=0) == []
    plan = WindowPlan.of([plan_chunks(17, 8, True), plan_chunks(3, 8, True), plan_chunks(8, 8, True)])
    assert plan.doc.tolist() == [0, 0, 2] and plan.scored.tolist() == [3, 3, 3]


def bos_tokenizer(tok):
    """A copy of ``tok`` that adds its BOS by itself (like Llama's tokenizers)."""
    tok = copy.deepcopy(tok)
    tok.backend_tokenizer.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return tok


def _prepare(tok, tmp_path, texts=TEXTS, **ev):
    cfg = EvalConfig(**{"window": 16, "protocol": "llama-perplexity", **ev})
    return prepare(tok, iter(texts), "d", f"k{id(tok)}:{len(texts)}", tmp_path / "tokens", cfg, 64, "tiny")


@pytest.mark.parametrize("adds_bos", [False, True])
def test_prepare_plans_chunks_and_counts_the_scored_tokens_bytes(tiny, tmp_path, adds_bos):
    _, tok = tiny
    tok = bos_tokenizer(tok) if adds_bos else tok
    p = _prepare(tok, tmp_path)
    lengths = [len(x) + adds_bos for x in encode(tok, TEXTS)]
    assert p.protocol.name == "llama-perplexity" and p.protocol.every_window == adds_bos
    assert p.protocol.prefix_id == (0 if adds_bos else None) and p.first_excess is None
    assert p.targets.tolist() == [(m // 16) * 7 for m in lengths]
    table, ids = token_byte_lengths(tok), encode(tok, TEXTS)
    for d, text_ids in enumerate(ids):
        seq = [0] * adds_bos + list(text_ids)
        want = sum(int(table[t]) for c in range(lengths[d] // 16) for t in seq[c * 16 + 9:c * 16 + 16])
        assert p.bytes[d] == want
    assert p.chars.sum() == 0 and p.words.sum() == 0  # not counted: their metrics are not available
    assert len(_prepare(tok, tmp_path, chunks=2).plan) == 2


def test_errors_are_one_line(tiny, tmp_path):
    _, tok = tiny
    with pytest.raises(UserError, match=r"no llama-perplexity chunk of n_ctx=16 tokens: its longest document has 3"):
        _prepare(tok, tmp_path, texts=["abc"])
    with pytest.raises(UserError, match="leave prefix at 'auto'"):
        _prepare(tok, tmp_path, prefix="none")
    with pytest.raises(UserError, match="exceeds tiny's maximum of 64"):
        _prepare(tok, tmp_path, window=128)
    with pytest.raises(ValueError, match="eval.stride .* must be left unset"):
        EvalConfig(window=16, stride=8, protocol="llama-perplexity")
    with pytest.raises(ValueError, match="eval.chunks needs"):
        EvalConfig(window=16, chunks=2)


def test_a_bos_run_through_evaluate_matches_llama_cpps_loop_by_hand(tiny):
    model, tok = tiny
    tok = bos_tokenizer(tok)
    res = evaluate(model, tok, texts=TEXTS, window=16, protocol="llama-perplexity", device="cpu")
    nll = []
    for ids in encode(tok, TEXTS):
        seq = [0] + list(ids)
        for c in range(len(seq) // 16):
            x = list(seq[c * 16:(c + 1) * 16])
            x[0] = 0
            with torch.no_grad():
                lp = torch.log_softmax(model(torch.tensor([x])).logits[0].double(), -1)
            nll += [-float(lp[q, x[q + 1]]) for q in range(8, 15)]
    nll = np.array(nll)
    lp = res.to_dict()["llama_perplexity"]
    assert lp["bos_replaced"] is True and lp["scored_tokens"] == len(nll)
    assert lp["nll_mean"] == pytest.approx(nll.mean(), rel=1e-5)
    se = math.sqrt((np.square(nll).mean() - nll.mean() ** 2) / (len(nll) - 1))
    assert lp["ppl_se"] == pytest.approx(se * math.exp(nll.mean()), rel=1e-4)
