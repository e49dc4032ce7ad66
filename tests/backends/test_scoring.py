"""Scoring on a tiny random model, against naive one-position-at-a-time references."""

import numpy as np
import pytest
import torch
from conftest import corpus

from lm_eval_it.backends.hf.scorer import Scorer
from lm_eval_it.backends.logits import token_nll
from lm_eval_it.backends.tokenizer import encode, with_prefix
from lm_eval_it.engine.execute import score_sequences
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.errors import UserError


def naive_nll(model, seq, window, stride):
    """Each target j scored from S[e - window : j], e the last target of the window that scores it."""
    out = []
    plan = plan_windows(len(seq), window, stride)
    for w in plan:
        for j in w.targets():
            ctx = torch.tensor([seq[w.start : j]])
            with torch.no_grad():
                logp = torch.log_softmax(model(ctx).logits[0, -1].double(), -1)
            out.append(-logp[seq[j]].item())
    return np.array(out)


@pytest.fixture(scope="module")
def seqs(tiny):
    _, tok = tiny
    texts = [t[:n] for t, n in zip(corpus()[:6], (40, 300, 5, 700, 120, 1))]
    return [with_prefix(x, tok.bos_token_id) for x in encode(tok, texts)]


def test_token_nll_hand_computed():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [3.0, 1.0, 0.0, 0.0]])
    got = token_nll(logits, torch.tensor([2, 0])).tolist()
    assert got[0] == pytest.approx(np.log(4), rel=1e-6)
    assert got[1] == pytest.approx(np.log(np.exp(3) + np.exp(1) + 2) - 3, rel=1e-6)


@pytest.mark.float64_reference
def test_single_window_equals_full_sequence_pass(tiny, seqs):
    model, _ = tiny
    scorer = Scorer(model, "cpu")
    seq = seqs[1]
    got = score_sequences(scorer, [seq], [plan_windows(len(seq), 512, 512)], batch_size=1)[0].token_nll
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([seq])).logits[0].double(), -1)
    ref = -logp[torch.arange(len(seq) - 1), torch.tensor(seq[1:])].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.float64_reference
@pytest.mark.parametrize("window,stride", [(16, 16), (16, 1), (16, 5), (7, 3)])
def test_windows_match_naive_per_target_contexts(tiny, seqs, window, stride):
    model, _ = tiny
    scorer = Scorer(model, "cpu")
    seq = seqs[0]
    got = score_sequences(scorer, [seq], [plan_windows(len(seq), window, stride)], batch_size=3)[0].token_nll
    np.testing.assert_allclose(got, naive_nll(model, seq, window, stride), rtol=1e-5, atol=1e-5)


def test_batch_size_does_not_change_numbers(tiny, seqs):
    model, _ = tiny
    scorer = Scorer(model, "cpu")
    plans = [plan_windows(len(s), 64, 24) for s in seqs]
    runs = {bs: [d.nll for d in score_sequences(scorer, seqs, plans, bs)] for bs in (1, 4, 16)}
    assert runs[1][-1] > 0  # the 1-char document: its one token is scored from the prefix
    for bs in (4, 16):
        np.testing.assert_allclose(runs[bs], runs[1], rtol=1e-6)
    lengths = [len(s) - 1 for s in seqs]
    assert [d.tokens for d in score_sequences(scorer, seqs, plans, 16)] == lengths


def test_split_head_equals_full_logits_and_chunking(tiny, seqs):
    model, _ = tiny
    plans = [plan_windows(len(s), 32, 16) for s in seqs]
    fast = Scorer(model, "cpu")
    assert fast.split_head
    ref = score_sequences(fast, seqs, plans, 4)
    slow = Scorer(model, "cpu", logit_budget=fast.vocab * 3)  # 3 positions per head chunk
    slow.split_head = False
    for a, b in zip(ref, score_sequences(slow, seqs, plans, 4)):
        np.testing.assert_allclose(a.token_nll, b.token_nll, rtol=1e-5, atol=1e-6)


def test_non_finite_logits_name_the_document(tiny, seqs):
    model, _ = tiny
    broken = type(model)(model.config).eval()
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():
        broken.model.norm.weight.fill_(float("nan"))
    scorer = Scorer(broken, "cpu")
    with pytest.raises(UserError, match=r"non-finite logits in document d0, window 0.*float32"):
        score_sequences(scorer, seqs[:1], [plan_windows(len(seqs[0]), 16, 16)], 1, doc_names=["d0"])


@pytest.mark.float64_reference
def test_bos_every_window_puts_bos_before_each_later_window(tiny, seqs):
    model, tok = tiny
    bos = tok.bos_token_id
    seq = seqs[0]
    window = 8  # BOS + 7 text tokens per later window
    plan = plan_windows(len(seq), window - 1, window - 1)
    got = score_sequences(Scorer(model, "cpu"), [seq], [plan], 2, window_prefix=bos)[0].token_nll
    ref = []
    for w in plan:
        for j in w.targets():
            ctx = seq[w.start : j] if w.start == 0 else [bos] + seq[w.start : j]
            assert len(ctx) <= window
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([ctx])).logits[0, -1].double(), -1)
            ref.append(-logp[seq[j]].item())
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
