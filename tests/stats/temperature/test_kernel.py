"""The sweep's fused kernel (:mod:`lm_eval_it.stats.temperature.kernel`): brute-force float64 values, the eager
path's values and top-1 verdicts, masked / tied / uniform / confident rows, and every way it falls back.

The compiled kernel is built for eight shapes here, shared between tests so that each is compiled once: with an
empty inductor cache that takes 2–6 s each on 2 cores (the file ~40 s), from the cache ~7 s for the file.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from conftest import needs

from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import Chunk, Count
from lm_eval_it.stats.temperature import kernel, softmax
from lm_eval_it.stats.temperature.softmax import softmax_stats
from lm_eval_it.stats.temperature.sweep import TemperatureStats

TEMPS = [1e-3, 0.05, 0.5, 1.0, 1.7, 20.0, 1e3]  # β = 2 is β = 1 squared (kernel.square_plan)
KEYS = ("entropy", "nll", "top1_prob", "d1", "d2")
RTOL = 2e-6
ATOL = 1e-6  # nats; d1 and d2 scale it by the row's logit range (and its square)
# (rows, vocab): vocabularies below, at and around the kernel's 512-entry float32 blocks, odd tails, a real one
SHAPES = [(3, 7), (13, 511), (3, 512), (3, 513), (13, 300), (13, 4099), (2, 49152), (1, 49152)]


@pytest.fixture(scope="module", autouse=True)
def roomy_dynamo():
    """Dynamo recompiles a function at most 8 times, then runs it uncompiled without a word (and the sweep still
    says "compiled"); this file compiles more shapes than that. Raise the limit, and make hitting it an error:
    the kernel then falls back and the tests below see it."""
    with torch._dynamo.config.patch(recompile_limit=64, fail_on_recompile_limit_hit=True):
        yield


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def kernel_warnings():
    """The kernel module's warnings, as messages (the suite runs with ``-p no:logging``: no caplog)."""
    handler, lg = Records(), logging.getLogger(kernel.__name__)
    level, disabled = lg.level, lg.disabled
    lg.addHandler(handler)
    lg.setLevel(logging.WARNING)
    lg.disabled = False
    try:
        yield handler.messages
    finally:
        lg.removeHandler(handler)
        lg.setLevel(level)
        lg.disabled = disabled


@pytest.fixture
def fused(kernel_warnings):
    """The compiled kernel, after one block through it (skipped where torch.compile cannot build it here)."""
    k = kernel.compiled("cpu")
    if k is not None:
        z, y = logits(3, 300)
        softmax_stats(z, y, TEMPS, derivatives=True, kernel=k)
        if any("differs" in m for m in kernel_warnings):
            pytest.fail(f"the compiled kernel's first block is wrong: {kernel_warnings}")
    needs(kernel.compiled("cpu") is not None, "torch.compile for the CPU (inductor)", "a C++ compiler")
    return kernel.compiled("cpu")


def logits(rows: int, vocab: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 logits like an LM's (normal, scale 1 to 10 by shape, a few confident rows), and targets: row 0's
    is its argmax, the others random."""
    gen = torch.Generator().manual_seed(seed if seed is not None else 1000 * rows + vocab)
    scale = (1.0, 4.0, 10.0)[vocab % 3]
    z = torch.randn(rows, vocab, generator=gen) * scale - 3.0
    peak = torch.randint(0, vocab, (rows,), generator=gen)
    z[torch.arange(rows), peak] += torch.rand(rows, generator=gen) * 3 * scale  # confident rows
    y = torch.randint(0, vocab, (rows,), generator=gen)
    y[0] = z[0].argmax()
    return z, y


def reference(z: torch.Tensor, y: torch.Tensor, temps) -> dict:
    """Brute force in float64 on the same float32 logits: log_softmax and softmax of β·z at each T."""
    z = z.double()
    gap = z - z.amax(-1, keepdim=True)
    d = torch.where(torch.isfinite(z), gap, 0.0)  # p = 0 there: 0·(−inf) would be NaN
    d_y = gap.gather(-1, y[:, None])[:, 0]
    out = {k: [] for k in KEYS}
    for t in temps:
        lp = torch.log_softmax(z * (1.0 / t), -1)
        p = lp.exp()
        mean = (p * d).sum(-1)
        out["entropy"].append(-torch.where(p > 0, p * lp, 0.0).sum(-1))
        out["nll"].append(-lp.gather(-1, y[:, None])[:, 0])
        out["top1_prob"].append(p.amax(-1))
        out["d1"].append(mean - d_y)
        out["d2"].append((p * (d - mean[:, None]) ** 2).sum(-1))
    ref = {k: torch.stack(v, 1) for k, v in out.items()}
    ref["top1_correct"] = z.argmax(-1) == y
    return ref


def atols(z: torch.Tensor) -> dict:
    """Absolute tolerance per statistic and row: ATOL nats, times the logit range for d1 (and squared for d2)."""
    fin = torch.where(torch.isfinite(z), z, z.amax(-1, keepdim=True)).double()
    span = (fin.amax(-1) - fin.amin(-1)).clamp_min(1.0)[:, None]
    return {"entropy": ATOL, "nll": ATOL, "top1_prob": ATOL, "d1": ATOL * span, "d2": ATOL * span**2}


def excess(got: torch.Tensor, ref: torch.Tensor, atol) -> float:
    """Largest |got − ref| / (atol + RTOL·|ref|): ≤ 1 is within tolerance; equal infinities count as 0,
    NaN fails."""
    got = got.double()
    err = torch.where(got == ref, 0.0, (got - ref).abs() / (atol + RTOL * ref.abs()))
    return float(err.max())


def both(z, y, temps=TEMPS, k=None):
    """(compiled, eager) statistics of the same logits."""
    return (softmax_stats(z, y, temps, derivatives=True, kernel=k or kernel.compiled("cpu")),
            softmax_stats(z, y, temps, derivatives=True, kernel=None))


# ---------------------------------------------------------------------------------------------- float64


@pytest.mark.float64_reference
@pytest.mark.parametrize("rows,vocab", SHAPES)
def test_compiled_kernel_matches_float64_and_is_as_accurate_as_eager(fused, rows, vocab):
    z, y = logits(rows, vocab)
    comp, eager = both(z, y)
    ref, tol = reference(z, y, TEMPS), atols(z)
    for key in KEYS:
        e_comp, e_eager = excess(comp[key], ref[key], tol[key]), excess(eager[key], ref[key], tol[key])
        assert e_comp <= 1.0, (key, e_comp)
        # as accurate as the eager path on the same data (both are float32 at the bottom)
        assert e_comp <= 2.0 * e_eager + 0.01, (key, e_comp, e_eager)
    assert torch.equal(comp["top1_correct"], ref["top1_correct"])
    assert torch.equal(comp["top1_correct"], eager["top1_correct"])
    assert kernel.compiled("cpu") is not None  # it ran compiled, and was not dropped on the way


# ---------------------------------------------------------------------------------------------- edge rows


def edge_rows(vocab: int = 300):
    """Rows: 0 part of the vocabulary −inf (masked), 1 the same with a −inf target, 2 all equal (target not the
    first entry), 3/4 three tied maxima with the target the second / the first of them, 5 the target the argmax by
    a gap of 30."""
    z, y = logits(6, vocab, seed=7)
    z[0:2, vocab // 2 :] = -math.inf
    y[0], y[1] = 3, vocab - 1
    z[2], y[2] = 0.7, 5
    top = float(z[3:5].max()) + 1.0
    z[3:5, [11, 40, 250]] = top
    y[3], y[4] = 40, 11
    z[5] = torch.randn(vocab, generator=torch.Generator().manual_seed(8))
    y[5] = 17
    z[5, 17] = float(z[5].max()) + 30.0
    return z, y


def test_masked_tied_uniform_rows_match_float64_and_eager(fused):
    z, y = edge_rows()
    comp, eager = both(z, y)
    ref, tol = reference(z, y, TEMPS), atols(z)
    for key in KEYS:
        rows = [0, 2, 3, 4] if key in ("nll", "d1") else [0, 1, 2, 3, 4]  # row 1's NLL and slope are +inf
        assert excess(comp[key][rows], ref[key][rows], tol[key][rows] if key in ("d1", "d2") else ATOL) <= 1, key
        assert excess(comp[key][rows], eager[key][rows], tol[key][rows] if key in ("d1", "d2") else ATOL) <= 2, key
    # masked vocabulary: everything finite, except the NLL (and its slope) of a −inf target
    assert torch.isfinite(comp["entropy"][:2]).all() and torch.isfinite(comp["top1_prob"][:2]).all()
    assert torch.isfinite(comp["d2"][:2]).all()
    assert torch.isfinite(comp["nll"][0]).all() and (comp["nll"][1] == math.inf).all()
    assert (comp["d1"][1] == math.inf).all() and (eager["nll"][1] == math.inf).all()
    # all logits equal: uniform at every T
    assert torch.allclose(comp["entropy"][2].double(), torch.full((len(TEMPS),), math.log(300), dtype=torch.float64),
                          rtol=1e-6, atol=0)
    assert torch.allclose(comp["top1_prob"][2].double(), torch.full((len(TEMPS),), 1 / 300, dtype=torch.float64),
                          rtol=1e-6, atol=0)
    assert (comp["d2"][2] == 0).all()
    # tied maxima: the first of them is the prediction, as in the eager path
    assert comp["top1_correct"].tolist()[2:5] == eager["top1_correct"].tolist()[2:5] == [False, False, True]
    assert torch.allclose(comp["top1_prob"][3:5, 0].double(), torch.full((2,), 1 / 3, dtype=torch.float64),
                          rtol=1e-6, atol=0)  # T = 1e-3: the three maxima share it all
    assert torch.equal(comp["top1_correct"], eager["top1_correct"])


def test_confident_target_keeps_its_relative_precision(fused):
    """Target the argmax by a gap of 30: NLL = log(1 + Σ_{j≠y} e^{β d_j}) is ~3e-12 at T = 1 and ~6e-26 at
    T = 0.5; the log1p form keeps them to float32 relative precision, here against the same log1p form in float64
    (float64 log_softmax is off by 5e-5 at T = 1 and 100% at T = 0.5; float32 log_softmax gives 0).

    What is left is the rounding of the exponent β·d in float32: a relative error of up to |β·d|·2⁻²⁴ in each
    e^{β d}, hence the bound below (the kernel's exp2(d·β·log2 e) and the eager exp(d·β) both have it; at
    β = 1 and 2 the eager product is exact and only the fused kernel shows it, ~1e-6 at T = 0.5)."""
    z, y = edge_rows()
    z, y = z[4:], y[4:]  # two rows (a single row would compile another kernel); row 1 is the confident one
    comp, eager = both(z, y)
    d = z[1].double() - z[1].double().max()
    rest = d[torch.arange(z.shape[1]) != int(y[1])]
    betas = torch.tensor([1.0 / t for t in TEMPS], dtype=torch.float64)
    e = torch.exp(betas[:, None] * rest)  # (T, vocab − 1)
    nll = torch.log1p(e.sum(-1))
    entropy = nll - betas * (e * rest).sum(-1) / (1.0 + e.sum(-1))
    assert 1e-13 < nll[TEMPS.index(1.0)] < 1e-10 and 1e-27 < nll[TEMPS.index(0.5)] < 1e-24
    rtol = 2 * betas * float(-rest.max()) * 2.0**-24 + 2e-7  # 7e-6 at T = 0.5, 3.8e-6 at T = 1, 2.3e-7 at T = 20
    normal = nll > 1e-30  # float32 keeps relative precision down to its smallest normal numbers
    for got in (comp, eager):
        for key, ref in (("nll", nll), ("entropy", entropy)):
            rel = (got[key][1].double() - ref).abs() / ref
            assert (rel[normal] <= rtol[normal]).all(), (key, rel.tolist())
        assert (got["nll"][1].double()[~normal] <= 1e-30).all()
        assert got["top1_correct"][1]

# ---------------------------------------------------------------------------------------------- blocks


def test_compiled_and_eager_agree_over_several_blocks_with_a_short_last_one(fused):
    vocab = 49152
    per_block = softmax.FUSED_BLOCK // vocab
    rows = 2 * per_block + 5  # three blocks: two full, one of five rows
    z, y = logits(rows, vocab, seed=3)
    calls = []

    def counting(*args):
        calls.append(args[0].shape[0])
        return fused(*args)

    comp, eager = both(z, y, k=counting)
    assert calls == [per_block, per_block, 5]
    tol = atols(z)
    for key in KEYS:
        assert excess(comp[key], eager[key], tol[key]) <= 2.0, key  # each within 1 of float64
    assert torch.equal(comp["top1_correct"], eager["top1_correct"])
    assert kernel.compiled("cpu") is not None


# ---------------------------------------------------------------------------------------------- fallbacks


def raising(*args):
    raise RuntimeError("inductor: no luck")


def off_by_one_percent(*args):
    stats, *rest = kernel.sums(*args)
    return ({k: v * 1.01 for k, v in stats.items()}, *rest)


@pytest.fixture
def fresh_kernel(monkeypatch):
    """A clean slate for the process-wide kernel state, restored after the test."""
    monkeypatch.setattr(kernel, "_CHECKED", set())
    monkeypatch.setitem(kernel._COMPILED, "cpu", kernel._COMPILED.get("cpu"))
    return monkeypatch


def test_a_kernel_that_raises_falls_back_to_eager_once_and_for_the_process(fresh_kernel, kernel_warnings):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", raising)
    z, y = logits(13, 300)
    eager = softmax_stats(z, y, TEMPS, derivatives=True)
    got = softmax_stats(z, y, TEMPS, derivatives=True, kernel=kernel.compiled("cpu"))
    for key in (*KEYS, "top1_correct"):
        assert torch.equal(got[key], eager[key]), key
    assert kernel.compiled("cpu") is None
    again = softmax_stats(z, y, TEMPS, derivatives=True, kernel=raising)  # a caller still holding it: quiet
    assert torch.equal(again["nll"], eager["nll"])
    assert len(kernel_warnings) == 1 and "RuntimeError: inductor: no luck" in kernel_warnings[0]


def test_a_kernel_with_wrong_numbers_is_caught_by_the_first_block_check(fresh_kernel, kernel_warnings):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", off_by_one_percent)
    z, y = logits(13, 300)
    eager = softmax_stats(z, y, TEMPS, derivatives=True)
    got = softmax_stats(z, y, TEMPS, derivatives=True, kernel=kernel.compiled("cpu"))
    for key in (*KEYS, "top1_correct"):
        assert torch.equal(got[key], eager[key]), key
    assert kernel.compiled("cpu") is None
    assert len(kernel_warnings) == 1 and "differs from the eager formulas" in kernel_warnings[0]


# ---------------------------------------------------------------------------------------------- the sweep


def chunk_of(z: torch.Tensor, y: torch.Tensor) -> Chunk:
    n = z.shape[0]
    return Chunk(z, y, torch.zeros(n), np.zeros(n, np.int64), np.arange(n), np.arange(1, n + 1), np.array([0]),
                 np.ones(n, np.int64))


def summary(stat: TemperatureStats, rows: dict, n: int) -> dict:
    """``stat.summarize`` on the totals of one chunk's rows (sums, and histograms of the Count fields)."""
    totals = {}
    for f in stat.fields():
        v = np.asarray(rows[f.name])
        if isinstance(f, Count):
            flat = v.reshape(n, -1)
            totals[f.name] = np.stack([np.bincount(flat[:, i], minlength=f.bins)
                                       for i in range(flat.shape[1])]).reshape(*f.shape, f.bins)
        else:
            totals[f.name] = v.astype(np.float64).sum(0)
    return stat.summarize(totals, {"tokens": n, "bytes": 4 * n})


def test_sweep_kernel_compiled_without_torch_compile_is_a_one_line_user_error(fresh_kernel):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", None)
    z, y = logits(13, 300)
    with pytest.raises(UserError, match="eval.sweep_kernel") as err:
        TemperatureStats(TEMPS, 300, search=False, kernel="compiled").rows(chunk_of(z, y))
    assert "\n" not in str(err.value)


def test_sweep_kernel_compiled_that_fails_on_a_chunk_is_a_user_error(fresh_kernel):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", raising)
    z, y = logits(13, 300)
    with pytest.raises(UserError, match="eval.sweep_kernel"):
        TemperatureStats(TEMPS, 300, search=False, kernel="compiled").rows(chunk_of(z, y))


def test_sweep_kernel_eager_never_calls_the_compiled_kernel(fresh_kernel):
    calls = []
    fresh_kernel.setitem(kernel._COMPILED, "cpu", lambda *a: calls.append(a) or raising())
    z, y = logits(13, 300)
    stat = TemperatureStats(TEMPS, 300, search=False, kernel="eager")
    rows = stat.rows(chunk_of(z, y))
    assert calls == [] and stat.kernels_run == {"eager"}
    assert summary(stat, rows, 13)["kernel"] == "eager"
    eager = softmax_stats(z, y, TEMPS, derivatives=True)
    assert torch.equal(rows["nll"], eager["nll"]) and torch.equal(rows["d2"], eager["d2"])


def test_sweep_kernel_auto_runs_compiled_and_says_so(fused):
    z, y = logits(13, 300)
    stat, eager = TemperatureStats(TEMPS, 300, search=False), TemperatureStats(TEMPS, 300, search=False, kernel="eager")
    rows, ref = stat.rows(chunk_of(z, y)), eager.rows(chunk_of(z, y))
    assert stat.kernels_run == {"compiled"}
    s, r = summary(stat, rows, 13), summary(eager, ref, 13)
    assert s["kernel"] == "compiled" and r["kernel"] == "eager"
    tol = atols(z)
    for key in KEYS:
        assert excess(rows[key], ref[key], tol[key]) <= 2.0, key
    for a, b in zip(s["per_temperature"], r["per_temperature"]):
        assert a["nll_bits_per_token"] == pytest.approx(b["nll_bits_per_token"], rel=1e-6)
        assert a["entropy_bits_per_token"] == pytest.approx(b["entropy_bits_per_token"], rel=1e-6)


def test_sweep_kernel_auto_without_torch_compile_runs_eager(fresh_kernel):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", None)
    z, y = logits(13, 300)
    stat = TemperatureStats(TEMPS, 300, search=False)
    summary_ = summary(stat, stat.rows(chunk_of(z, y)), 13)
    assert stat.kernels_run == {"eager"} and summary_["kernel"] == "eager"


# ---------------------------------------------------------------------------------------------- threads


def test_results_do_not_depend_on_the_thread_count(fused):
    """Inductor bakes the thread count into the kernel it compiles: compile again under 2 threads and compare."""
    z, y = logits(13, 300)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one_c, one_e = both(z, y)
        torch._dynamo.reset()
        torch.set_num_threads(2)
        two_c, two_e = both(z, y)
    finally:
        torch.set_num_threads(threads)
        torch._dynamo.reset()  # later compiles use the suite's own thread count
    for key in KEYS:
        for a, b in ((one_c, two_c), (one_e, two_e)):
            assert torch.allclose(a[key].double(), b[key].double(), rtol=1e-7, atol=0), key
    assert torch.equal(one_c["top1_correct"], two_c["top1_correct"])
    assert kernel.compiled("cpu") is not None


def d2_half_again(*args):
    stats, *rest = kernel.sums(*args)
    return ({**stats, "d2": stats["d2"] * 1.5}, *rest)


def rows_after_the_second_off(*args):
    stats, *rest = kernel.sums(*args)
    return ({k: torch.cat([v[:2], v[2:] * 1.1]) for k, v in stats.items()}, *rest)


@pytest.mark.parametrize("wrong", [d2_half_again, rows_after_the_second_off])
def test_the_first_block_check_covers_every_statistic_and_every_row(fresh_kernel, kernel_warnings, wrong):
    fresh_kernel.setitem(kernel._COMPILED, "cpu", wrong)
    z, y = logits(13, 300)
    eager = softmax_stats(z, y, TEMPS, derivatives=True)
    got = softmax_stats(z, y, TEMPS, derivatives=True, kernel=kernel.compiled("cpu"))
    for key in (*KEYS, "top1_correct"):
        assert torch.equal(got[key], eager[key]), key
    assert kernel.compiled("cpu") is None and len(kernel_warnings) == 1
