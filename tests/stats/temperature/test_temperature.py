"""Temperature statistics against hand-computed values; best T against brute force; ECE; the sweep end to end."""

import math

import numpy as np
import pytest
import torch

from lm_eval_it.config.temperatures import parse_temperatures
from lm_eval_it.stats.temperature.softmax import (
    ece,
    minimize_convex,
    reliability,
    softmax_stats,
)

LN2 = math.log(2)


def np_stats(z, y, t):
    s = np.asarray(z, dtype=np.float64) / t
    p = np.exp(s - s.max())
    p /= p.sum()
    return -(p * np.log(p)).sum(), -np.log(p[y]), p.max()


def test_entropy_and_nll_match_hand_computation():
    z = torch.tensor([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    y = torch.tensor([0, 2])
    temps = [0.5, 1.0, 2.0]
    s = softmax_stats(z, y, temps)
    for i in range(2):
        for k, t in enumerate(temps):
            h, nll, top = np_stats(z[i].tolist(), int(y[i]), t)
            assert s["entropy"][i, k].item() == pytest.approx(h, rel=1e-5)
            assert s["nll"][i, k].item() == pytest.approx(nll, rel=1e-5)
            assert s["top1_prob"][i, k].item() == pytest.approx(top, rel=1e-5)
    # T = 1, row 0 by hand: p = e^[1,2,3] / (e + e^2 + e^3)
    zsum = math.e + math.e**2 + math.e**3
    assert s["nll"][0, 1].item() == pytest.approx(math.log(zsum) - 1.0, rel=1e-6)
    assert s["top1_correct"].tolist() == [False, True]


def test_temperature_limits():
    z = torch.tensor([[3.0, 1.0, 0.0, -2.0, 0.5, 2.5, 1.5, 0.25]])
    v = z.shape[1]
    hot = softmax_stats(z, torch.tensor([1]), [1e4])
    assert hot["entropy"][0, 0].item() / LN2 == pytest.approx(math.log2(v), abs=1e-4)   # T → ∞: log2 V
    assert hot["nll"][0, 0].item() / LN2 == pytest.approx(math.log2(v), abs=1e-3)
    cold = softmax_stats(z, torch.tensor([1]), [1e-3])
    assert cold["entropy"][0, 0].item() == pytest.approx(0.0, abs=1e-6)                   # T → 0: entropy 0
    # NLL of a miss → (z_max − z_y)/T nats: the bits of the argmax miss grow like 1/T
    assert cold["nll"][0, 0].item() == pytest.approx((3.0 - 1.0) / 1e-3, rel=1e-4)
    hit = softmax_stats(z, torch.tensor([0]), [1e-3])
    assert hit["nll"][0, 0].item() == pytest.approx(0.0, abs=1e-6)


def test_derivatives_match_finite_differences():
    torch.manual_seed(0)
    z, y = torch.randn(50, 30, dtype=torch.float64) * 3, torch.randint(0, 30, (50,))
    beta, h = 0.8, 1e-4
    mid = softmax_stats(z, y, [1 / beta], derivatives=True)
    up, down = (softmax_stats(z, y, [1 / (beta + d)])["nll"].double().sum() for d in (h, -h))
    assert mid["d1"].double().sum().item() == pytest.approx(((up - down) / (2 * h)).item(), rel=1e-3)
    d1_up, d1_down = (softmax_stats(z, y, [1 / (beta + d)], derivatives=True)["d1"].double().sum() for d in (h, -h))
    assert mid["d2"].double().sum().item() == pytest.approx(((d1_up - d1_down) / (2 * h)).item(), rel=1e-3)


@pytest.mark.float64_reference
def test_best_temperature_matches_brute_force_grid():
    torch.manual_seed(1)
    z = torch.randn(400, 50) * 4
    # targets drawn at T = 1.7: the logits are too sharp for them (an over-confident model), best T near 1.7
    y = torch.multinomial(torch.softmax(z / 1.7, -1), 1, generator=torch.Generator().manual_seed(2)).squeeze(1)

    def total(beta):
        s = softmax_stats(z, y, [1 / beta], derivatives=True)
        return s["nll"].double().sum().item(), s["d1"].double().sum().item(), s["d2"].double().sum().item()

    beta, evals = minimize_convex(total, 0.05, 5.0, x0=1.0)
    grid = np.arange(0.05, 5.0, 0.0005)
    values = [softmax_stats(z, y, [1 / b])["nll"].double().sum().item() for b in grid[::10]]
    coarse = grid[::10][int(np.argmin(values))]
    fine = np.arange(coarse - 0.005, coarse + 0.005, 0.00005)
    best_grid = fine[int(np.argmin([total(b)[0] for b in fine]))]
    assert beta == pytest.approx(best_grid, abs=1e-4)
    assert total(beta)[0] <= total(best_grid)[0] * (1 + 1e-8)  # float32 logits: equal up to rounding
    assert 1 / beta > 1.0 and evals < 20


def test_ece_constructed_cases():
    assert ece([0.9] * 10, [1] * 7 + [0] * 3) == pytest.approx(0.2)
    # two groups: 20% sure and right 20% of the time (calibrated), 80% sure and always right (off by 0.2)
    conf, corr = [0.2] * 5 + [0.8] * 5, [1, 0, 0, 0, 0] + [1] * 5
    assert ece(conf, corr, 15, "width") == pytest.approx(0.1)
    assert ece(conf, corr, 2, "mass") == pytest.approx(0.1)
    assert ece([0.5, 0.5], [1, 0]) == 0.0
    bins = reliability(conf, corr, 15)
    assert sum(b["count"] for b in bins) == 10 and bins[3]["accuracy"] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        ece(conf, corr, 15, "quantile")


def test_parse_temperatures():
    assert parse_temperatures("0.2:2.0:0.1") == [round(0.2 + 0.1 * i, 10) for i in range(19)]
    assert parse_temperatures("0.7, 1.3") == [0.7, 1.3]
    with pytest.raises(ValueError):
        parse_temperatures("2:1:0.1")


def test_sweep_end_to_end(run_config, tiny_model_dir):
    run = run_config({"tiny": tiny_model_dir},
                     ["The cat sat on the mat. " * 6, "Numbers 1 2 3 4 5 6 7 8 9.", "def f(x): return x"],
                     name="sw", dataset="toy", eval={"window": 24, "stride": 12, "batch_size": 3, "device": "cpu"},
                     output={"per_token": True}, command="sweep",
                     args=("--temperatures", "0.5:2.0:0.5", "eval.best_temperature=exact"))
    folder, res = run.folder, run.results
    (row,) = res["results"]
    sw = row["temperature"]
    assert sw["temperatures"] == [0.5, 1.0, 1.5, 2.0]
    t1 = sw["per_temperature"][1]
    # the sweep's T = 1 is the scoring pass's cross-entropy
    assert t1["nll_bits_per_token"] == pytest.approx(row["metrics"]["bits_per_token"], rel=1e-5)
    assert t1["nll_bits_per_byte"] == pytest.approx(row["metrics"]["bits_per_byte"], rel=1e-5)
    ent = [p["entropy_bits_per_token"] for p in sw["per_temperature"]]
    assert ent == sorted(ent)  # entropy rises with T
    best = sw["best"]
    # a random model is worse than uniform: its NLL falls all the way to T = 1e3, and it says so (no number)
    assert best["temperature"] is None and best["method"] == "beyond" and not best["exact"]
    assert best["label"].startswith("beyond T = 1000")
    assert best["nll_bits_per_token"] <= min(p["nll_bits_per_token"] for p in sw["per_temperature"]) + 1e-9
    # the verdict rests on accuracy against confidence over documents: three documents cannot settle it
    c1 = sw["calibration_T1"]
    assert c1["accuracy_minus_confidence"] == pytest.approx(c1["top1_accuracy"] - c1["mean_top1_prob"], abs=1e-9)
    lo, hi = c1["accuracy_minus_confidence_interval"]
    assert c1["documents"] == 3 and c1["direction"] == (
        "over-confident" if hi < 0 else "under-confident" if lo > 0 else "not distinguishable at this sample size")
    assert sum(sw["per_temperature"][0]["entropy_histogram"]["counts"]) == row["metrics"]["tokens"]
    for name in ("temperature_curves.png", "reliability.png", "entropy_histogram.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    # the three sweep plots, and the NLL-by-context-length plot every run now has
    assert (folder / "report.html").read_text().count("data:image/png;base64,") == 4
    import pyarrow.parquet as pq

    (shard_dir,) = folder.glob("per_token-*")
    table = pq.read_table(shard_dir)
    assert table.num_rows == row["metrics"]["tokens"] == row["per_token"]["rows"]
    assert [c for c in table.column_names if c.startswith("entropy_T")] == [f"entropy_T{t:g}" for t in sw["temperatures"]]
    nll = table.column("nll").to_numpy().astype(np.float64)
    assert float(nll.sum()) == pytest.approx(row["metrics"]["nll"], rel=1e-9)
    ent1 = table.column("entropy_T1").to_numpy().astype(np.float64)
    assert ent1.sum() / row["metrics"]["tokens"] / LN2 == pytest.approx(t1["entropy_bits_per_token"], rel=1e-6)
    assert "Temperature sweep · tiny · toy" in (folder / "summary.md").read_text()
