"""comparison.csv carries a statistic's comparison fields (its ``compare_columns``) as comparison.md/html do:
with target ranks on, a ``target_rank_1_delta`` column holding each model's Δ share of rank 1; with no such
statistic, the header is today's."""

import csv

from conftest import corpus


def _csv(run):
    with open(run.folder / "comparison.csv", newline="") as f:
        return list(csv.DictReader(f))


def _models(tiny_model_dir):
    return [{"name": "a", "path": str(tiny_model_dir)}, {"name": "b", "path": str(tiny_model_dir), "dtype": "bfloat16"}]


def test_comparison_csv_has_the_delta_share_of_rank_1(run_config, tiny_model_dir):
    texts = [t[:600] for t in corpus()[:10]]
    run = run_config(_models(tiny_model_dir), texts, eval={"window": 32, "device": "cpu", "target_rank": True})
    want = {e["model"]: e["target_rank_1_delta"] for c in run.results["comparison"] for e in c["rows"]}
    rows = _csv(run)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert rows[0]["target_rank_1_delta"] == "" and want["a"] is None  # the baseline has no Δ
    assert want["b"] is not None and float(rows[1]["target_rank_1_delta"]) == want["b"]


def test_without_such_a_statistic_the_header_ends_with_prefix(run_config, tiny_model_dir):
    texts = [t[:300] for t in corpus()[:4]]
    run = run_config(_models(tiny_model_dir), texts, eval={"window": 32, "device": "cpu"})
    header = (run.folder / "comparison.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "prefix" and "target_rank_1_delta" not in header
