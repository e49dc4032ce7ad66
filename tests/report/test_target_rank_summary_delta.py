"""With target ranks and two models, summary.md carries the comparison's Δ share of rank 1 as report.html does.

The Δ lives in ``comparison[].rows[].target_rank_1_delta``; a plug-in's ``compare_columns`` put it in the
comparison's detail tables (comparison.md/html, and summary.md's comparison section).
"""

from conftest import corpus


def test_summary_md_shows_the_delta_share_of_rank_1_like_report_html(run_config, tiny_model_dir):
    texts = [t[:600] for t in corpus()[:10]]
    run = run_config([{"name": "a", "path": str(tiny_model_dir)}, {"name": "b", "path": str(tiny_model_dir),
                      "dtype": "bfloat16"}], texts, eval={"window": 32, "device": "cpu", "target_rank": True},
                     output={"plots": True})
    deltas = [e["target_rank_1_delta"] for c in run.results["comparison"] for e in c["rows"]
              if e.get("target_rank_1_delta") is not None]
    assert deltas, "the comparison has a Δ share of rank 1"
    assert "Δ share of rank 1" in (run.folder / "report.html").read_text()
    md = (run.folder / "summary.md").read_text()
    assert "Δ share of rank 1" in md and f"{deltas[0]:+.4f}" in md
