"""Calibration verdicts: confidence against accuracy with intervals over documents, against brute force."""

import numpy as np
import pytest
import torch
from test_best_temperature import (  # noqa: F401
    scaled_model,
    score_sweep,
    slope_root_t,
    text_ids,
    tok,
    trained,
)

from lm_eval_it.stats.temperature.calibration import (
    CALIBRATED_WITHIN,
    NO_NET_DIRECTION,
    UNDETERMINED,
    confidence_verdict,
    ece_interval,
    resample_weights,
)
from lm_eval_it.stats.temperature.softmax import ece
from lm_eval_it.stats.temperature.sweep import CAL_BINS


def per_document_sums(conf_docs, correct_docs):
    """Per document: Σ(correct − confidence) per equal-width bin, and the token count."""
    gaps, tokens = [], []
    for conf, corr in zip(conf_docs, correct_docs):
        b = np.minimum((conf * CAL_BINS).astype(int), CAL_BINS - 1)
        gaps.append(np.bincount(b, weights=corr - conf, minlength=CAL_BINS))
        tokens.append(conf.size)
    return np.array(gaps), np.array(tokens, dtype=float)


def test_ece_interval_is_the_bootstrap_of_the_per_token_ece():
    rng = np.random.default_rng(4)
    conf = [rng.uniform(0.05, 0.95, rng.integers(5, 40)) for _ in range(9)]
    corr = [(rng.uniform(size=c.size) < c ** 1.5).astype(float) for c in conf]
    gaps, tokens = per_document_sums(conf, corr)
    got = ece_interval(gaps, tokens, resamples=300, seed=7)
    w = resample_weights(len(conf), 300, 7).astype(int)
    brute = [ece(np.concatenate([np.repeat(c, k) for c, k in zip(conf, row)]),
                 np.concatenate([np.repeat(y, k) for y, k in zip(corr, row)])) for row in w]
    assert got == pytest.approx(list(np.quantile(brute, [0.025, 0.975])), abs=1e-9)


def _docs(rng, n_docs, n_tokens, accuracy_of):
    conf = [rng.uniform(0.05, 0.95, n_tokens) for _ in range(n_docs)]
    return conf, [(rng.uniform(size=c.size) < accuracy_of(c)).astype(float) for c in conf]


@pytest.mark.parametrize("accuracy_of,expected", [
    (lambda c: np.minimum(2 * c, 1.0), "under-confident"),  # right twice as often as it is sure
    (lambda c: c / 2, "over-confident"),
    (lambda c: c, "calibrated"),
    (lambda c: np.where(c < 0.5, c + 0.3, c - 0.3), NO_NET_DIRECTION),  # bins err both ways, cancel on average
])
def test_verdict_rests_on_accuracy_against_confidence(accuracy_of, expected):
    rng = np.random.default_rng(1)
    out = confidence_verdict(*per_document_sums(*_docs(rng, 40, 2000, accuracy_of)))
    assert out["verdict"] == expected
    lo, hi = out["accuracy_minus_confidence_interval"]
    assert lo <= out["accuracy_minus_confidence"] <= hi


def test_too_few_tokens_are_not_called_calibrated():
    rng = np.random.default_rng(2)
    out = confidence_verdict(*per_document_sums(*_docs(rng, 12, 15, lambda c: c)))
    assert out["verdict"] == UNDETERMINED and out["ece_equal_width_interval"][1] > CALIBRATED_WITHIN
    assert confidence_verdict(*per_document_sums(*_docs(rng, 1, 5000, lambda c: c)))["verdict"] == UNDETERMINED


def sweep_documents(model, tok, temperatures, n_docs=10, n_tokens=600):
    ids = text_ids(tok, n_tokens)
    size = len(ids) // n_docs
    seqs = [[tok.bos_token_id] + ids[i * size:(i + 1) * size] for i in range(n_docs)]
    stat, cap, _, red = score_sweep(model, tok, temperatures, seqs)
    docs = sorted(red.rows)
    per_doc = {k.split(".", 1)[1]: red.per_doc_arrays(k, docs) for k in red.layout.per_document
               if k.startswith("temperature.")}
    n = sum(red.rows[d]["tokens"] for d in docs)
    summary = stat.summarize(red.of(stat), {"tokens": n, "bytes": 2 * n, "per_document": per_doc})
    return summary, torch.cat(cap.logits), torch.cat(cap.targets)


def doubled_head(model):
    """Every output row twice: each probability is split over two equal logits at every T, so the mean top-1
    confidence halves while the top-1 token (the first of a tie) and the best T stay as they were."""
    w = model.lm_head.weight.data
    head = torch.nn.Linear(w.shape[1], 2 * w.shape[0], bias=False)
    head.weight.data = torch.cat([w, w])
    model.lm_head = head
    model.config.vocab_size = 2 * w.shape[0]
    return model


def test_sweep_at_the_best_temperature_is_not_called_calibrated_when_accuracy_is_twice_confidence(tok, trained):
    """The verdict was entropy − NLL ≈ 0, which holds at the NLL-optimal T for any model: a sweep containing the
    best T printed "(calibrated)" there although top-1 accuracy was twice the mean confidence."""
    _, z, y = sweep_documents(doubled_head(scaled_model(trained, 1.0)), tok, [1.0])
    best_t = slope_root_t(z, y)
    summary, z, y = sweep_documents(doubled_head(scaled_model(trained, 1.0)), tok, [1.0, best_t])
    assert summary["best"]["calibration_at_temperature"] == best_t
    cal = summary["best"]["calibration"]
    p = torch.softmax(z / best_t, -1)
    accuracy = (p.argmax(-1) == y).double().mean().item()
    confidence = p.max(-1).values.mean().item()
    assert accuracy == pytest.approx(2 * confidence, rel=0.05)  # the case: right twice as often as it is sure
    assert cal["top1_accuracy"] == pytest.approx(accuracy, abs=1e-12)
    assert cal["mean_top1_prob"] == pytest.approx(confidence, rel=1e-5)
    assert abs(cal["entropy_minus_nll_bits"]) < 1e-4  # the old rule's "calibrated"
    assert cal["direction"] == "under-confident"
    lo, hi = cal["accuracy_minus_confidence_interval"]
    assert lo <= accuracy - confidence <= hi and lo > 0
    assert cal["ece_equal_width"] == pytest.approx(ece(p.max(-1).values.numpy(), (p.argmax(-1) == y).numpy()),
                                                   abs=1e-5)
    assert cal["ece_equal_width_interval"][0] > CALIBRATED_WITHIN
