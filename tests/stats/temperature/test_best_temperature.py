"""Best temperature from streamed statistics, against a brute-force float64 search on the real logits."""

import math

import numpy as np
import pytest
import torch
from conftest import byte_level_tokenizer, corpus

from lm_eval_it.backends.hf.scorer import Scorer
from lm_eval_it.engine.distributed import Context
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.prepare import from_sequences
from lm_eval_it.engine.reduce import Reduction
from lm_eval_it.engine.refine import refine_best_temperature
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.stats.base import Statistic
from lm_eval_it.stats.temperature.best import (
    best_from_points,
    hermite_minimizer,
    label,
    search_temperatures,
)
from lm_eval_it.stats.temperature.softmax import LN2, softmax_stats
from lm_eval_it.stats.temperature.sweep import TemperatureStats


class Capture(Statistic):
    """Test-only: keeps every chunk's logits in float64 (fine for 600 tokens)."""

    name = "capture"

    def __init__(self):
        self.logits, self.targets = [], []

    def rows(self, chunk):
        self.logits.append(chunk.logits.double().clone())
        self.targets.append(chunk.targets.clone())
        return {}


def golden_best_t(z: torch.Tensor, y: torch.Tensor, lo=1e-3, hi=1e3) -> float:
    """Golden-section search on log T of the float64 total NLL (convex in β, unimodal in log T)."""
    def f(log_t):
        lp = torch.log_softmax(z / math.exp(log_t), -1)
        return -lp.gather(1, y[:, None]).sum().item()
    a, b = math.log(lo), math.log(hi)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > 1e-12:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return math.exp((a + b) / 2)


@pytest.fixture(scope="module")
def tok():
    return byte_level_tokenizer()


def text_ids(tok, n_tokens=600):
    return tok(" ".join(corpus()[:3]), add_special_tokens=False)["input_ids"][:n_tokens]


@pytest.fixture(scope="module")
def trained(tok):
    """A tiny Llama trained for a few steps on the text, so its predictions are informative (best T finite)."""
    import copy

    torch.manual_seed(0)
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    ids = torch.tensor([[tok.bos_token_id] + text_ids(tok)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(15):
        for i in range(0, ids.shape[1] - 1, 64):
            x = ids[:, i : i + 65]
            loss = model(input_ids=x, labels=x).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return lambda: copy.deepcopy(model)


def scaled_model(trained, scale: float):
    model = trained()
    with torch.no_grad():
        model.lm_head.weight.mul_(scale)
    return model


def score_sweep(model, tok, temperatures, seqs):
    """Score token sequences (windows of 64) with the sweep statistic and a logit capture: (stat, cap, ex, red)."""
    prepared = from_sequences(seqs, [plan_windows(len(s), 64, 64) for s in seqs], vocab=len(tok))
    scorer = Scorer(model, "cpu")
    stat, cap = TemperatureStats(temperatures, scorer.vocab), Capture()
    ex = Executor(prepared, scorer, [stat, cap], batch_size=4)
    red = Reduction(ex.layout, prepared)
    for r in ex.run():
        red.add(r)
    return stat, cap, ex, red


def run_sweep(model, tok, temperatures, exact=False, n_tokens=600):
    stat, cap, ex, red = score_sweep(model, tok, temperatures, [[tok.bos_token_id] + text_ids(tok, n_tokens)])
    totals = red.of(stat)
    refined = refine_best_temperature(stat, totals, ex, Context()) if exact else None
    best = stat.best(totals, refined)
    z, y = torch.cat(cap.logits), torch.cat(cap.targets)
    return best, z, y, len(refined or [])


@pytest.mark.float64_reference
@pytest.mark.parametrize("scale", [1 / 8, 1.0])
def test_single_swept_temperature_is_bracketed_near_one_or_said_beyond_then_found_exactly(tok, trained, scale):
    """Temperatures [1]: the search points 0.8 and 1.25 bracket a best T near 1 and interpolate it; a best T
    beyond them (logits scaled by 1/8: T ≈ 0.1) is never a number, only a certain interval and an estimate.
    ``exact`` finds it either way, whichever temperatures were swept."""
    model = scaled_model(trained, scale)
    best1, z, y, _ = run_sweep(model, tok, [1.0])
    truth = golden_best_t(z, y)
    t_lo, t_hi = best1["temperature_interval"]
    assert t_lo <= truth <= (t_hi if t_hi is not None else math.inf) and not best1["exact"]
    if scale == 1.0:
        assert 0.8 < truth < 1.25 and best1["method"] == "interpolated"
        lo, hi = sorted(best1["bracket_temperatures"])
        assert lo <= truth <= hi and lo <= best1["temperature"] <= hi
    else:
        assert truth < 0.8 and best1["method"] == "beyond" and best1["temperature"] is None
        assert (t_lo, t_hi) == (0.0, 0.8) and best1["newton_temperature"] < 0.8
        assert label(best1).startswith("beyond T = 0.8: the NLL still falls as T falls")
    for temps in ([1.0], [1.0, 2.0]):
        exact, _, _, passes = run_sweep(model, tok, temps, exact=True)
        assert exact["exact"] and exact["temperature"] == pytest.approx(truth, rel=1e-5)
        assert passes >= 3  # each refinement pass adds three points


@pytest.mark.float64_reference
def test_best_t_far_outside_the_sweep_is_said_beyond_not_clamped_and_exact_finds_it(tok, trained):
    """A scaled-up lm_head has its best T far above the sweep: the single pass says "beyond T = 1.25" with the
    certain interval [1.25, ∞) (it was once clamped to the last point and called exact); ``exact`` searches
    outward and converges on it."""
    model = scaled_model(trained, 20.0)
    best, z, y, _ = run_sweep(model, tok, [0.5])
    truth = golden_best_t(z, y)
    assert truth > 8
    assert best["method"] == "beyond" and best["temperature"] is None and not best["exact"]
    assert best["temperature_interval"] == [1.25, None] and best["newton_temperature"] > 1.25
    assert "beyond T = 1.25" in label(best) and "exact" in label(best)
    exact, _, _, passes = run_sweep(model, tok, [0.5], exact=True)
    assert exact["exact"] and exact["temperature"] == pytest.approx(truth, rel=1e-5)
    assert passes <= 8 * 3


@pytest.mark.float64_reference
def test_inside_the_swept_range_the_certain_interval_holds_and_the_estimate_is_within_its_error(tok, trained):
    model = scaled_model(trained, 1.5)
    best, z, y, _ = run_sweep(model, tok, [0.5, 1.0, 1.5, 2.0])  # the gap 0.5 … 1 gets one search point
    truth = golden_best_t(z, y)
    assert 0.5 < truth < 2.0
    t_lo, t_hi = best["temperature_interval"]
    assert t_lo <= truth <= t_hi and t_hi / t_lo < 1.5
    assert abs(best["temperature"] - truth) <= best["error_estimate_temperature"]
    assert best["temperature"] == pytest.approx(truth, rel=2e-3)
    assert best["method"] == "interpolated" and not best["exact"]


def test_beyond_the_search_range_is_labelled_not_a_number():
    b = np.array([1e-3, 1.0, 1e3])  # T from 1e3 down to 1e-3; NLL still falling as T rises past 1e3
    r = best_from_points(b, -b, np.full(3, -1.0) * -1, np.ones(3))
    assert r["temperature"] is None and r["method"] == "beyond" and "beyond T = 1000" in r["note"]
    r = best_from_points(b, b, -np.ones(3), np.ones(3))
    assert r["temperature"] is None and "beyond T = 0.001" in r["note"]


def test_hermite_is_exact_for_a_quintic():
    p = np.polynomial.Polynomial([3.0, -2.0, 0.5, 0.1, 0.02, 0.001])  # convex on [0, 2], minimum inside
    d1, d2 = p.deriv(), p.deriv(2)
    beta, _ = hermite_minimizer(0.0, 2.0, p(0), d1(0), d2(0), p(2), d1(2), d2(2))
    root = [r.real for r in d1.roots() if abs(r.imag) < 1e-12 and 0 <= r.real <= 2][0]
    assert beta == pytest.approx(root, abs=1e-12)


@pytest.mark.float64_reference
def test_refinement_rows_are_float64_and_match_a_brute_force_slope():
    """The exact refinement sums slopes that cancel near the minimum: its rows are float64 (float32 rows left
    the bracket ~6e-6 wide after eight passes on a one-thread run of the test above)."""
    from lm_eval_it.engine.refine import SearchStats
    from lm_eval_it.stats.base import Chunk

    g = torch.Generator().manual_seed(3)
    z = (torch.randn(7, 300, generator=g) * 4).float()
    y = torch.randint(0, 300, (7,), generator=g)
    rows = SearchStats([0.8, 1.3]).rows(Chunk(z, y, None, None, None, None, None, None))
    assert rows["d1"].dtype == torch.float64
    for k, t in enumerate([0.8, 1.3]):
        zz = z.double()
        p = torch.softmax(zz / t, -1)
        mean = (p * zz).sum(-1)
        assert torch.allclose(rows["d1"][:, k], mean - zz[torch.arange(7), y], rtol=1e-12, atol=1e-12)
        assert torch.allclose(rows["d2"][:, k], (p * zz * zz).sum(-1) - mean**2, rtol=1e-10, atol=1e-10)
        assert torch.allclose(rows["nll"][:, k], -torch.log_softmax(zz / t, -1)[torch.arange(7), y], rtol=1e-12)


def float64_nll(z: torch.Tensor, y: torch.Tensor, t: float) -> float:
    return -torch.log_softmax(z / t, -1).gather(1, y[:, None]).sum().item()


def float64_entropy(z: torch.Tensor, t: float) -> float:
    lp = torch.log_softmax(z / t, -1)
    return -(lp.exp() * lp).sum().item()


def sweep_block(model, tok, temperatures, exact=False):
    """The results.json ``best`` block of a sweep, with the float64 logits it was computed from."""
    best, z, y, passes = run_sweep(model, tok, temperatures, exact=exact)
    stat = TemperatureStats(temperatures, len(tok))
    block = stat._best_block(best, lambda k: None, y.numel(), 2 * y.numel())
    return block, z, y


@pytest.mark.float64_reference
def test_best_nll_beyond_the_points_is_measured_and_certainly_bounded(tok, trained):
    """Logits scaled by 1/4, temperatures [1]: the best T lies below the search point 0.8. The reported NLL is
    the one measured at 0.8 (not an extrapolation), and what is said to be certain holds."""
    model = scaled_model(trained, 0.25)
    block, z, y = sweep_block(model, tok, [1.0])
    n = y.numel()
    truth = golden_best_t(z, y)
    true_min = float64_nll(z, y, truth) / n / LN2
    assert truth < 0.8 and block["method"] == "beyond" and block["temperature"] is None
    at = block["nll_measured_at_temperature"]
    assert at == 0.8
    assert block["nll_bits_per_token"] == pytest.approx(float64_nll(z, y, at) / n / LN2, rel=1e-6)
    assert block["nll_bits_per_token"] >= true_min
    t_lo, t_hi = block["temperature_interval"]
    assert t_lo <= truth <= t_hi
    lo, hi = block["nll_bits_per_token_interval"]
    assert lo <= true_min <= hi
    assert block["entropy_bits_per_token"] is None and block["entropy_bits_per_token_interval"] is None
    assert block["bound"] == "convexity" and "estimate" in block["label"]
    assert "±" not in block["label"]


def test_a_wide_gap_between_points_is_said_and_the_interval_is_tighter_than_the_bracket():
    """Points a factor 5 apart (as a hand-made or refined set may be): the label says the gap is wide, the
    certain interval is narrower than the bracket and holds the minimiser."""
    b = np.array([1 / 0.5, 1 / 0.1])  # T = 0.5 and 0.1; f = (β − 4)² + 1, minimum at T = 0.25
    r = best_from_points(b, (b - 4) ** 2 + 1, 2 * (b - 4), np.full(2, 2.0))
    lo, hi = sorted(r["bracket_temperatures"])
    t_lo, t_hi = r["temperature_interval"]
    assert (lo, hi) == (0.1, 0.5) and t_lo <= 0.25 <= t_hi and t_hi / t_lo < hi / lo
    assert "wide gap" in label(r) and "estimate" in label(r)


def slope_root_t(z: torch.Tensor, y: torch.Tensor) -> float:
    """The best T by bisection on the sign of the float64 dNLL/dβ (sharper than a search on values)."""
    zy = z.gather(1, y[:, None]).squeeze(1)
    lo, hi = 1e-3, 1e3  # in β
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        p = torch.softmax(mid * z, -1)
        lo, hi = (mid, hi) if ((p * z).sum(-1) - zy).sum().item() < 0 else (lo, mid)
    return 1.0 / math.sqrt(lo * hi)


@pytest.mark.float64_reference
def test_exact_best_temperature_keeps_its_value_and_gets_a_tight_certain_interval(tok, trained):
    model = scaled_model(trained, 0.25)
    block, z, y = sweep_block(model, tok, [1.0], exact=True)
    n, truth = y.numel(), slope_root_t(z, y)
    assert block["exact"] and block["temperature"] == pytest.approx(truth, rel=1e-6)
    t_lo, t_hi = block["temperature_interval"]
    assert t_lo <= truth <= t_hi and t_hi / t_lo - 1 < 1e-6
    lo, hi = block["nll_bits_per_token_interval"]
    assert lo <= float64_nll(z, y, truth) / n / LN2 <= hi and hi - lo < 1e-5
    assert block["nll_bits_per_token"] == pytest.approx(float64_nll(z, y, truth) / n / LN2, rel=1e-9)


def test_a_slope_that_underflows_to_zero_is_not_called_exact():
    # memorised text: every target is the argmax by a logit gap of 5, so the NLL keeps falling as T → 0, but in
    # float32 its slope is exactly 0 at small T; the minimiser must not be pinned there ("exact") but left open
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 50))
    y = z.argmax(1)
    z[np.arange(400), y] += 5.0
    temps = [1e-3, 1e-2, 0.1, 0.8, 1.0, 1.25, 10.0]  # a sweep down to T = 1e-3
    s = softmax_stats(torch.tensor(z, dtype=torch.float32), torch.tensor(y), temps, derivatives=True)
    f, g, h = (s[k].double().sum(0).numpy() for k in ("nll", "d1", "d2"))
    assert (g == 0).sum() >= 2                                   # the underflow this guards against
    best = best_from_points([1 / t for t in temps], f, g, h)
    assert best["method"] == "flat" and not best["exact"]
    lo, hi = best["temperature_interval"]
    assert lo == 0.0 and 0.001 < hi < 1.0                        # holds T → 0, the true minimiser
    assert label(best).startswith("flat: the slope is 0 to float precision")
    # every logit equal: every T is as good; the interval is all of them
    flat = softmax_stats(torch.zeros(40, 50), torch.tensor(rng.integers(0, 50, 40)), temps, derivatives=True)
    f, g, h = (flat[k].double().sum(0).numpy() for k in ("nll", "d1", "d2"))
    best = best_from_points([1 / t for t in temps], f, g, h)
    assert best["method"] == "flat" and best["temperature_interval"] == [0.0, None]


def test_an_exact_label_names_two_distinct_ends_or_the_one_temperature_and_its_width():
    """An exact bracket is printed to nine significant digits; one narrower than those digits show is named
    by its temperature and relative width instead of as an interval with identical ends."""
    wide = label({"method": "exact", "bracket_temperatures": [1.0084, 1.0085]})
    assert wide == "exact: bracketed in [1.0084, 1.0085] and converged"
    narrow = label({"method": "exact", "bracket_temperatures": [1.00840039, 1.00840039 * (1 + 2e-10)]})
    assert narrow == "exact: bracketed around T = 1.00840039 (relative width 2.0e-10) and converged"


def test_a_narrow_bracket_says_it_lies_between_adjacent_evaluated_temperatures():
    b = np.array([1 / 1.1, 1 / 0.9])  # f = (β − 1)² + 1, minimum at T = 1
    r = best_from_points(b, (b - 1) ** 2 + 1, 2 * (b - 1), np.full(2, 2.0))
    assert "between T = 0.9 and 1.1, adjacent evaluated temperatures" in label(r) and "wide gap" not in label(r)
