"""GLTR target-rank buckets (stats/target_rank.py): ranks against a brute-force float64 reference, bucket
edges, shares, intervals, and a run on the tiny model that reports the block and the per-token column."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from lm_eval_it.backends.base import Capability
from lm_eval_it.cli import main
from lm_eval_it.errors import UserError
from lm_eval_it.stats.base import check_needs
from lm_eval_it.stats.intervals import MIN_DOCUMENTS, ratio_stats
from lm_eval_it.stats.target_rank import (
    BUCKETS,
    TargetRankPlugin,
    bucket_of,
    bucket_shares,
    target_ranks,
)


def brute_rank(z: np.ndarray, t: int) -> int:
    """Brute force, float64: sort descending (stable) and count the entries strictly above the target's logit."""
    order = np.argsort(-z.astype(np.float64), kind="stable")
    above = [j for j in order if z[j] > z[t]]
    return 1 + len(above)


def test_ranks_match_a_float64_argsort_reference_with_ties_in_the_targets_favour():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 300, generator=g)
    logits[:, :40] = torch.round(logits[:, :40] * 2) / 2  # many exact ties among the first 40 entries
    logits[5, :] = 1.0  # a row of all ties: every target ranks 1
    targets = torch.randint(0, 300, (64,), generator=g)
    targets[:20] = torch.randint(0, 40, (20,), generator=g)  # targets inside the tied block
    got = target_ranks(logits, targets).tolist()
    want = [brute_rank(logits[i].double().numpy(), int(targets[i])) for i in range(64)]
    assert got == want
    assert got[5] == 1


def test_bucket_edges():
    ranks = torch.tensor([1, 2, 10, 11, 100, 101, 1000, 1001, 50_000])
    assert bucket_of(ranks).tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_rows_are_one_hot_of_the_bucket_and_a_rank_above_1000_needs_a_large_vocabulary():
    logits = torch.zeros(3, 2000)
    logits[0, 7] = 5.0  # target 7 alone on top: rank 1
    logits[1, :1500] = 1.0  # target 1999 below 1500 entries: rank 1501
    logits[2, :10] = 1.0  # target 10 below 10 entries: rank 11
    chunk = type("C", (), {"logits": logits, "targets": torch.tensor([7, 1999, 10])})
    rows = TargetRankPlugin().statistic.rows(chunk)
    assert rows["rank"].tolist() == [1, 1501, 11]
    assert rows["buckets"].tolist() == [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 1, 0, 0]]


def test_shares_sum_to_one_and_intervals_are_ratio_estimates_over_documents():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 20, size=(MIN_DOCUMENTS + 2, 5)).astype(float)
    out = bucket_shares(counts)
    assert sum(out["shares"].values()) == pytest.approx(1.0, abs=1e-12)
    assert out["tokens"] == int(counts.sum()) and out["counts"]["1"] == int(counts[:, 0].sum())
    r = ratio_stats(counts[:, 0], counts.sum(axis=1))
    assert out["shares"]["1"] == pytest.approx(counts[:, 0].sum() / counts.sum(), rel=1e-15)
    p = r["estimate"]  # the t interval on the log-odds scale (stats/target_rank.share_interval)
    logit, half = np.log(p / (1 - p)), (r["high"] - p) / (p * (1 - p))
    assert out["intervals"]["1"] == pytest.approx([1 / (1 + np.exp(half - logit)), 1 / (1 + np.exp(-logit - half))])


def test_no_interval_below_the_minimum_number_of_documents():
    counts = np.array([[3.0, 1, 0, 0, 0]] * (MIN_DOCUMENTS - 1))
    out = bucket_shares(counts)
    assert out["shares"]["1"] == pytest.approx(0.75)
    assert all(v is None for v in out["intervals"].values())


def test_a_backend_without_full_logits_is_refused_in_one_line():
    with pytest.raises(UserError, match="statistic 'target_rank' needs full_logits, which backend 'server'"):
        check_needs([TargetRankPlugin()], "server", {Capability.TARGET_LOGPROBS})
    check_needs([TargetRankPlugin()], "hf", set(Capability))  # no error


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    tmp = tmp_path_factory.mktemp("rank")
    texts = [f"document {i}: " + "the quick brown fox jumps over the lazy dog " * (1 + i % 3) for i in range(12)]
    rows = [{"text": t, "source": ["a", "b"][i % 2]} for i, t in enumerate(texts)]
    (tmp / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"models": [{"name": "m", "path": str(tiny_model_dir)}],
           "datasets": [{"name": "d", "path": str(tmp / "d.jsonl"), "group_by": "source"}],
           "eval": {"window": 32, "stride": 16, "batch_size": 4, "device": "cpu", "target_rank": True},
           "output": {"dir": str(tmp / "out"), "run_name": "r", "per_token": True, "plots": False}}
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp / "cfg.yaml"), "--quiet"]) == 0
    (folder,) = (tmp / "out" / "r").iterdir()
    return folder, json.loads((folder / "results.json").read_text())


def test_a_run_reports_the_block_per_dataset_and_per_group(run):
    folder, res = run
    tr = res["results"][0]["target_rank"]
    assert tr["tokens"] == res["results"][0]["metrics"]["tokens"] and tr["documents"] == 12
    assert sum(tr["counts"].values()) == tr["tokens"]
    assert sum(tr["shares"].values()) == pytest.approx(1.0)
    assert set(tr["groups"]) == {"a", "b"}
    assert sum(g["counts"]["1"] for g in tr["groups"].values()) == tr["counts"]["1"]
    # 12 documents ≥ MIN_DOCUMENTS: an interval for each bucket some token fell in, none for an empty one (> 1000)
    assert all((tr["intervals"][b] is not None) == (0 < tr["counts"][b] < tr["tokens"]) for b in BUCKETS)
    assert tr["counts"][">1000"] == 0 and tr["intervals"]["1"] is not None
    md = (folder / "summary.md").read_text()
    assert "## Target rank (GLTR)" in md and f"{tr['shares']['2-10']:.4f}" in md
    assert "<h2>Target rank (GLTR)</h2>" in (folder / "report.html").read_text()


def test_the_per_token_column_holds_each_tokens_rank(run):
    folder, res = run
    (shard,) = sorted((folder / "per_token-m-d").glob("*.parquet"))
    table = pq.read_table(shard)
    assert "target_rank" in table.column_names
    ranks = np.asarray(table.column("target_rank"))
    tr = res["results"][0]["target_rank"]
    assert int((ranks == 1).sum()) == tr["counts"]["1"] and int((ranks > 1000).sum()) == tr["counts"][">1000"]
    assert int(((ranks >= 2) & (ranks <= 10)).sum()) == tr["counts"]["2-10"]


def test_off_by_default_it_writes_none(tmp_path, tiny_model_dir):
    (tmp_path / "d.txt").write_text("one small document of text\n")
    cfg = {"models": [{"name": "m", "path": str(tiny_model_dir)}],
           "datasets": [{"name": "d", "path": str(tmp_path / "d.txt")}],
           "eval": {"window": 16, "stride": 16, "device": "cpu"},
           "output": {"dir": str(tmp_path / "out"), "run_name": "r", "plots": False, "per_token": True}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "cfg.yaml"), "--quiet"]) == 0
    (folder,) = (tmp_path / "out" / "r").iterdir()
    res = json.loads((folder / "results.json").read_text())
    assert res["results"][0]["target_rank"] is None
    assert "Target rank" not in (folder / "summary.md").read_text()
    assert "target_rank" not in pq.read_table(next((folder / "per_token-m-d").glob("*.parquet"))).column_names
