"""The terminal table fits 120 columns: intervals under their values, long names shortened, columns wrapped."""

from lm_eval_it.report.summary import COLUMNS, shorten, text_table

MODELS = ["HuggingFaceTB/SmolLM2-135M-Instruct @ quickstart/2026-01-01T00-00-00",
          "google/gemma-3-270m-it-Q4_K_M @ quickstart/2026-01-01T00-00-00", "tiny"]
DATASETS = ["wikitext-2-raw-v1-test-articles-full", "pydoc"]


def row(model, dataset, k):
    m = {"docs": 6000 + k, "tokens": 2_851_234 + k, "bytes": 12_345_678 + k, "token_perplexity": 1234.567 + k,
         "bits_per_token": 10.2687 + k, "bits_per_byte": 2.5011, "bits_per_word": 14.3321, "word_perplexity": 20612.85,
         "bits_per_char": 2.5101}
    iv = {"token_perplexity": [1200.001, 1299.999], "bits_per_token": [10.1, 10.4], "bits_per_byte": [2.4876, 2.5123],
          "bits_per_word": [14.1, 14.5], "word_perplexity": [19999.5, 21234.25], "bits_per_char": [2.49, 2.52]}
    return {"model": model, "dataset": dataset, "metrics": m, "intervals": iv, "timing": {"tokens_per_second": 12345.6}}


def test_three_models_two_datasets_fit_120_columns():
    rows = [row(m, d, k) for k, (m, d) in enumerate((m, d) for m in MODELS for d in DATASETS)]
    out = text_table(rows)
    lines = out.splitlines()
    assert max(map(len, lines)) <= 120
    # every value and every interval is still there, once
    for r in rows:
        assert shorten(r["model"], 28) in out
    assert out.count("20612.85") == 6 and out.count("19999.50–21234.25") == 6 and out.count("2.4876–2.5123") == 6
    assert out.count("2851234") == 1 and out.count("12345683") == 1
    # every column header appears (some bands repeat only model and dataset)
    for head, _, _ in COLUMNS:
        assert head in out
    # the interval line sits right under its value, right-aligned to the same column
    i = next(k for k, line in enumerate(lines) if "2.5011" in line)
    assert lines[i + 1].index("2.4876–2.5123") + len("2.4876–2.5123") == lines[i].index("2.5011") + len("2.5011")
    # and the long names were shortened with both ends kept
    assert "HuggingFaceTB/SmolL…00-00-00" in out and MODELS[0] not in out


def test_short_table_is_one_band_without_interval_lines():
    r = row("m", "d", 0)
    r.pop("intervals")
    lines = text_table([r]).splitlines()
    assert len(lines) == 2 and lines[0].split()[:3] == ["model", "dataset", "bits/byte"] and len(lines[1]) <= 120


def test_shorten_keeps_short_names_and_width():
    assert shorten("tiny", 24) == "tiny"
    assert len(shorten("x" * 100, 24)) == 24
