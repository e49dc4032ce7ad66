"""The Hugging Face backend scores as the model does: its logits and NLLs are bit for bit the split-head and
full-forward paths' (torch.equal), its chunks follow the logit budget, and a reference rides along for KL."""

import pytest
import torch
from conftest import corpus

from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.backends.hf.scorer import LOGIT_BUDGET, Scorer
from lm_eval_it.backends.logits import token_nll
from lm_eval_it.backends.tokenizer import encode


@pytest.fixture(scope="module")
def batch(tiny):
    """Three windows of different lengths, right-padded, every position scored."""
    model, tok = tiny
    seqs = [[0] + ids[:n] for ids, n in zip(encode(tok, corpus()[20:23]), (40, 33, 17))]
    width = max(len(s) - 1 for s in seqs)
    ids = torch.zeros((3, width), dtype=torch.long)
    mask = torch.zeros((3, width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for r, s in enumerate(seqs):
        ids[r, : len(s) - 1] = torch.tensor(s[:-1])
        mask[r, : len(s) - 1] = 1
        rows += [r] * (len(s) - 1)
        cols += list(range(len(s) - 1))
        targets += s[1:]
    return ids, mask, torch.tensor(rows), torch.tensor(cols), torch.tensor(targets)


def joined(scorer, batch):
    parts = list(scorer.chunks(*batch))
    assert [p[0] for p in parts] == sorted(p[0] for p in parts) and parts[-1][1] == len(batch[4])
    return parts, torch.cat([p[2] for p in parts]), torch.cat([p[4] for p in parts])


def test_split_head_logits_and_nll_are_the_head_on_the_body_bit_for_bit(tiny, batch):
    model, tok = tiny
    backend = HFBackend.from_live(model, tok, "tiny", "cpu")
    scorer = backend.scorer()
    assert scorer.split_head and scorer.vocab == 400 and scorer.device == "cpu"
    _, logits, nll = joined(scorer, batch)
    ids, mask, rows, cols, targets = batch
    with torch.inference_mode():
        hidden = model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        want = model.get_output_embeddings()(hidden[rows, cols]).float()
    assert torch.equal(logits, want) and torch.equal(nll, token_nll(want, targets))


def test_full_path_logits_and_nll_are_model_ids_logits_bit_for_bit(tiny, batch):
    model, tok = tiny
    scorer = HFBackend.from_live(model, tok, "tiny", "cpu").scorer()
    scorer.split_head = False  # as when the probe fails
    _, logits, nll = joined(scorer, batch)
    ids, mask, rows, cols, targets = batch
    with torch.inference_mode():
        want = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[rows, cols].float()
    assert torch.equal(logits, want) and torch.equal(nll, token_nll(want, targets))


def test_chunks_hold_the_logit_budget_over_models_times_vocab(tiny, batch):
    model, tok = tiny
    backend = HFBackend.from_live(model, tok, "tiny", "cpu")
    assert backend.scorer().logit_budget == LOGIT_BUDGET == 1 << 25
    small = Scorer(model, "cpu", logit_budget=400 * 7)  # 7 positions a chunk
    parts, logits, _ = joined(small, batch)
    assert [p[1] - p[0] for p in parts] == [7] * 12 + [6]  # 90 positions
    paired = Scorer(model, "cpu", logit_budget=400 * 7, reference=Scorer(model, "cpu"))
    parts2, logits2, _ = joined(paired, batch)
    assert [p[1] - p[0] for p in parts2] == [3] * 30  # budget // (2 models × vocab)
    assert all(torch.equal(p[3], p[2]) for p in parts2)  # the same model: the same logits, slice by slice
    torch.testing.assert_close(logits2, logits, rtol=1e-5, atol=1e-5)


def test_a_reference_backend_rides_along_in_the_candidates_scorer(tiny, batch):
    model, tok = tiny
    cand, ref = HFBackend.from_live(model, tok, "a", "cpu"), HFBackend.from_live(model, tok, "b", "cpu")
    scorer = cand.scorer(reference=ref.scorer())
    assert scorer.reference is not None and scorer.reference.split_head
    assert all(p[3] is not None and torch.equal(p[3], p[2]) for p in scorer.chunks(*batch))
    assert cand.scorer().reference is None


def test_live_backend_facts_are_what_the_api_recorded(tiny):
    model, tok = tiny
    b = HFBackend.from_live(model, tok, "live", "cpu")
    assert (b.fingerprint, b.source, b.dtype, b.max_positions) == (f"in-memory:{id(model)}", {"in_memory": True},
                                                                   "float32", 512)
    assert b.facts(b.scorer()).load_seconds == 0.0 and b.auto_batch_size(1024) == 4
