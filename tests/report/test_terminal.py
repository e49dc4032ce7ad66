"""What a run prints: one compact table within 100 columns, intervals in the cell; the rest with --details."""

import json

import yaml

from lm_eval_it.cli import main
from lm_eval_it.report.terminal import compact_table, terminal_report

MODELS = ["SmolLM2-135M-Instruct-Q4_1", "gemma-3-270m-it-Q4_K_M", "HuggingFaceTB/SmolLM2-360M-Instruct"]
DATASETS = ["wikitext-2-raw-test-docs", "pydoc-topics"]


PPL = [21.5432, 12.3456, 9.8765, 1234.5678, 18.0021, 7.7321]  # one model far off: a 4-digit perplexity


def row(model, dataset, k, sweep=True, kl=True):
    bpb, ppl = 0.8843 + k / 100, PPL[k]
    r = {"model": model, "dataset": dataset,
         "metrics": {"docs": 62 + k, "tokens": 2_851_234 + k, "bits_per_byte": bpb, "token_perplexity": ppl},
         "intervals": {"bits_per_byte": [bpb - 0.0131, bpb + 0.0147], "token_perplexity": [ppl * 0.97, ppl * 1.031]}}
    if sweep:
        r["temperature"] = {"best": {"temperature": 0.93125 + k / 10}}
    if kl and k:
        r["kl"] = {"per_temperature": [{"temperature": 1.0, "kl_ref_cand_nats": 0.000123456 * k}]}
    return r


def test_compact_table_fits_100_columns_with_every_interval_in_its_cell():
    rows = [row(m, d, k) for k, (m, d) in enumerate((m, d) for m in MODELS for d in DATASETS)]
    lines = compact_table(rows).splitlines()
    assert max(map(len, lines)) <= 100, "\n".join(lines)
    assert len(lines) == 1 + len(rows)  # one header, one line per row: no second band, no interval lines
    assert lines[0].split("  ")[0] == "model" and "bits/byte (95% CI)" in lines[0] and "best T" in lines[0]
    assert "0.8843 (0.8712–0.8990)" in lines[1] and "21.54 (20.90–22.21)" in lines[1] and "0.931" in lines[1]
    assert lines[1].rstrip().endswith("–")  # the reference has no KL: a dash
    assert "12.35 (11.98–12.73)" in lines[2] and "0.000123" in lines[2]
    assert "1235 (1198–1273)" in lines[4] and "9.88 (9.58–10.18)" in lines[3]  # one precision per cell
    assert "2851234" in lines[1] and "62" in lines[1]
    # the names were cut to the room left, both ends kept; every row still tells the models apart
    models = [line.split("  ")[0].strip() for line in lines[1:]]
    assert len(set(models)) == len(MODELS) and all("…" in m or m in MODELS for m in models)


def test_compact_table_keeps_short_names_whole_and_drops_columns_nobody_needs():
    lines = compact_table([row("tiny", "toy", 0, sweep=False, kl=False)]).splitlines()
    assert lines[0].split() == ["model", "dataset", "docs", "tokens", "bits/byte", "(95%", "CI)", "token", "ppl",
                                "(95%", "CI)"]
    assert lines[1].split()[:2] == ["tiny", "toy"]


def test_the_report_is_one_table_and_the_folder_unless_details():
    rows = [row("m", "d", 0, sweep=False, kl=False)]
    rows[0]["compression"] = {"compressors": {"gzip": {"bits_per_byte": 2.5}}, "best": "gzip",
                              "best_bits_per_byte": 2.5, "model_to_best_ratio": 0.35, "definition": "bits / bytes"}
    results = {"results": rows, "datasets": [{"name": "d", "skipped_empty": 2}]}
    short = terminal_report(results, "results/r/1")
    assert "Compression" not in short and "##" not in short
    assert "d: 2 empty documents skipped." in short
    assert short.splitlines()[-2:] == ["results: results/r/1", "summary.md and report.html there hold every table; "
                                       "--details prints them here too"]
    long = terminal_report(results, "results/r/1", details=True)
    assert "## All metrics" in long and "## Compression baselines" in long and long.startswith(short.split("\n\n")[0])


def test_run_prints_the_sections_only_with_details(tmp_path, tiny_model_dir, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["The fox jumps.", "", "A dog sleeps here."]))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"models": [{"name": "tiny", "path": str(tiny_model_dir)}],
                                   "datasets": [{"name": "toy", "path": str(data)}],
                                   "eval": {"window": 16, "stride": 8, "device": "cpu", "batch_size": 2},
                                   "output": {"dir": str(tmp_path / "r"), "plots": False}}))
    assert main(["run", str(cfg), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "NLL by context length" not in out and "Compression" not in out and "Memorisation" not in out
    assert out.count("bits/byte") == 1 and "toy: 1 empty document skipped." in out and "results: " in out
    assert max(len(line) for line in out.splitlines() if not line.startswith("results: ")) <= 100
    (folder,) = (tmp_path / "r" / "c").iterdir()
    summary = (folder / "summary.md").read_text()
    assert "## NLL by context length" in summary and "toy: 1 empty document skipped." in summary
    assert main(["run", str(cfg), "--quiet", "--details"]) == 0
    out = capsys.readouterr().out
    assert "## NLL by context length" in out and "## Compression baselines" in out and "## All metrics" in out


def test_interval_labels_name_the_linearised_t_not_a_bootstrap():
    import numpy as np

    from lm_eval_it.report import terminal
    from lm_eval_it.report.sections import context_note
    from lm_eval_it.stats.context.bins import bin_edges, summarize_context

    assert terminal.LEGEND == "In brackets: 95% t intervals over documents (linearised)."
    a = np.ones((3, 2, 3))
    note = context_note({"context_length": summarize_context(a, bin_edges(2), window=2, stride=2)})
    assert "95% t intervals over documents (linearised)" in note and "bootstrap" not in note


def test_no_interval_legend_when_no_interval_is_shown():
    one = {"model": "m", "dataset": "d", "metrics": {"docs": 1, "tokens": 10, "bits_per_byte": 1.0,
                                                      "token_perplexity": 2.0},
           "intervals": {"bits_per_byte": None, "token_perplexity": None}}
    text = terminal_report({"results": [one]}, "/tmp/x")
    assert "In brackets" not in text and "No intervals" in text
