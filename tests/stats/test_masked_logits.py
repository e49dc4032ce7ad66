"""-inf logits (masked or padded vocabulary entries): statistics over the finite entries, never NaN."""

import math

import numpy as np
import pytest
import torch
from conftest import corpus

from lm_eval_it.stats.kl.divergence import kl_stats
from lm_eval_it.stats.temperature.softmax import softmax_stats


def brute(z, y, t):
    """float64 statistics of softmax(z / T) over the finite entries of one row."""
    z = np.asarray(z, dtype=np.float64)
    keep = np.isfinite(z)
    d = z[keep] - z[keep].max()
    p = np.exp(d / t)
    p /= p.sum()
    mean_d = (p * d).sum()
    d_y = z[y] - z[keep].max()
    return {"entropy": -(p * np.log(p)).sum(), "nll": -np.log(p[np.flatnonzero(keep) == y][0]) if keep[y] else math.inf,
            "top1_prob": p.max(), "d1": mean_d - d_y, "d2": (p * d * d).sum() - mean_d**2,
            "top1_correct": int(np.flatnonzero(keep)[p.argmax()]) == y}


def masked_logits(rows, vocab, masked_rows, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(rows, vocab, generator=g) * 3
    for r in masked_rows:
        z[r, torch.randperm(vocab, generator=g)[: vocab // 3]] = -math.inf
        z[r, -5:] = -math.inf  # padded tail, as in a vocabulary rounded up
    return z


@pytest.mark.float64_reference
@pytest.mark.parametrize("temps", [[1.0], [0.5, 1.0, 2.0]])
def test_softmax_stats_ignore_masked_entries(temps):
    z = masked_logits(6, 40, masked_rows=[1, 2, 4])
    y = torch.tensor([int(torch.isfinite(z[i]).nonzero()[i]) for i in range(6)])
    s = softmax_stats(z, y, temps, derivatives=True)
    for i in range(6):
        for k, t in enumerate(temps):
            ref = brute(z[i].tolist(), int(y[i]), t)
            for key in ("entropy", "nll", "top1_prob", "d1", "d2"):
                assert s[key][i, k].item() == pytest.approx(ref[key], rel=1e-4, abs=1e-5), (i, t, key)
        assert bool(s["top1_correct"][i]) == ref["top1_correct"]


@pytest.mark.float64_reference
def test_masked_rows_in_a_later_block():
    z = masked_logits(25, 50_000, masked_rows=range(15, 25), seed=1)  # 10 rows a block: blocks 2 and 3 masked
    y = torch.zeros(25, dtype=torch.long)
    z[:, 0] = 1.0
    s = softmax_stats(z, y, [0.7, 1.0], derivatives=True)
    for key in ("entropy", "nll", "top1_prob", "d1", "d2"):
        assert torch.isfinite(s[key]).all(), key
    for i in (3, 20):
        ref = brute(z[i].tolist(), 0, 0.7)
        assert s["entropy"][i, 0].item() == pytest.approx(ref["entropy"], rel=1e-4)
        assert s["d2"][i, 0].item() == pytest.approx(ref["d2"], rel=1e-3)


def test_masked_target_has_infinite_nll():
    z = torch.tensor([[1.0, -math.inf, 2.0, 0.5]])
    s = softmax_stats(z, torch.tensor([1]), [0.5, 1.0], derivatives=True)
    assert s["nll"].tolist() == [[math.inf, math.inf]]
    assert s["d1"].tolist() == [[math.inf, math.inf]]
    assert torch.isfinite(s["entropy"]).all() and torch.isfinite(s["d2"]).all()


def brute_kl(p_logits, q_logits, t):
    """KL(p ‖ q) in float64 over the entries where p is finite (inf if q masks one of them)."""
    a, b = np.asarray(p_logits, np.float64) / t, np.asarray(q_logits, np.float64) / t
    keep = np.isfinite(a)
    la = a[keep] - np.logaddexp.reduce(a[keep])
    if not np.isfinite(b[keep]).all():
        return math.inf
    lb = b - np.logaddexp.reduce(b[np.isfinite(b)])
    return float((np.exp(la) * (la - lb[keep])).sum())


@pytest.mark.float64_reference
def test_kl_with_shared_masked_entries():
    zr = masked_logits(5, 30, masked_rows=[0, 2, 3], seed=2)
    zc = zr + torch.randn(5, 30, generator=torch.Generator().manual_seed(3))  # -inf stays -inf
    y = torch.tensor([int(torch.isfinite(zr[i]).nonzero()[0]) for i in range(5)])
    temps = [0.5, 1.0, 2.0]
    s = kl_stats(zr, zc, y, temps)
    for i in range(5):
        for k, t in enumerate(temps):
            assert s["kl_fwd"][i, k].item() == pytest.approx(brute_kl(zr[i].tolist(), zc[i].tolist(), t), rel=1e-3, abs=1e-6)
            assert s["kl_rev"][i, k].item() == pytest.approx(brute_kl(zc[i].tolist(), zr[i].tolist(), t), rel=1e-3, abs=1e-6)
    assert torch.isfinite(s["dp"]).all() and torch.isfinite(s["nll_ref"]).all()


@pytest.mark.float64_reference
def test_kl_where_only_one_side_masks():
    zr = torch.tensor([[1.0, 2.0, 0.0, -math.inf]])
    zc = torch.tensor([[1.0, -math.inf, 0.5, -math.inf]])  # cand gives 0 to a token ref can emit
    s = kl_stats(zr, zc, torch.tensor([0]), [1.0])
    assert s["kl_fwd"].item() == math.inf
    assert s["kl_rev"].item() == pytest.approx(brute_kl(zc[0].tolist(), zr[0].tolist(), 1.0), rel=1e-5)
    s = kl_stats(zr, zc, torch.tensor([1]), [1.0])
    assert s["nll_cand"].item() == math.inf and not math.isnan(s["dp"].item())


@pytest.mark.float64_reference
def test_masked_vocabulary_gives_finite_sweep_and_kl(tiny):
    """-inf logits on part of the vocabulary: entropy, slopes and KL are finite and match float64 on the rest."""
    from lm_eval_it.backends.hf.scorer import Scorer
    from lm_eval_it.engine.execute import Executor
    from lm_eval_it.engine.prepare import from_sequences
    from lm_eval_it.engine.reduce import Reduction
    from lm_eval_it.engine.windows import plan_windows
    from lm_eval_it.stats.kl.statistic import KLStats
    from lm_eval_it.stats.temperature.sweep import TemperatureStats

    model, tok = tiny
    masked = list(range(300, len(tok)))
    ids = tok(corpus()[0][:300], add_special_tokens=False)["input_ids"]
    seq = [tok.bos_token_id] + [i for i in ids if i < 300]
    hook = model.lm_head.register_forward_hook(lambda m, i, o: o.index_fill(-1, torch.tensor(masked), -math.inf))
    try:
        scorer = Scorer(model, "cpu", reference=Scorer(model, "cpu"))
        prepared = from_sequences([seq], [plan_windows(len(seq), len(seq), len(seq))], vocab=scorer.vocab)
        sweep, kl = TemperatureStats([0.5, 1.0, 2.0], scorer.vocab), KLStats([1.0, 2.0])
        ex = Executor(prepared, scorer, [sweep, kl], 4)
        red = Reduction(ex.layout, prepared)
        for r in ex.run():
            red.add(r)
        with torch.no_grad():
            z = model(torch.tensor([seq])).logits[0, :-1].double()
    finally:
        hook.remove()
    totals = red.of(sweep)
    for key in ("entropy", "nll", "d1", "d2"):
        assert np.isfinite(totals[key]).all(), key
    y = torch.tensor(seq[1:])
    for k, t in enumerate([0.5, 1.0, 2.0]):
        zz = z[:, :300] / t
        p = torch.softmax(zz, -1)
        ent = -(p * torch.log_softmax(zz, -1)).sum().item()
        assert totals["entropy"][k] == pytest.approx(ent, rel=1e-4)
    kt = red.of(kl)
    assert np.isfinite(kt["fwd"]).all() and abs(kt["fwd"]).max() < 1e-3  # the same model twice: KL = 0
