"""Issue #14's reporting: context length, compression, memorisation and per-group sections in summary.md,
report.html and the comparison (two tiny models, a jsonl dataset grouped by its `source` field)."""

import csv
import io
import json
import math
import re

import pytest
from conftest import run_path, write_config

from lm_eval_it.report.compare.extras import context_gain
from lm_eval_it.report.compare.tables import gain_text
from lm_eval_it.report.plots import group_plot
from lm_eval_it.report.sections import insights_markdown, md_table

LN2 = math.log(2)
SOURCES = ["web", "code", "books"]
TEXTS = ["The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun.",
         "def area(r):\n    return 3.14159 * r * r  # circle\n",
         "It was a bright cold day in April, and the clocks were striking thirteen.",
         "Prices rose again this week; shoppers said they would wait for the sales to begin.",
         "for i in range(10):\n    print(i, i * i)\n",
         "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.",
         "Local team wins the cup after a dramatic penalty shoot-out on Saturday night.",
         "class Stack:\n    def __init__(self):\n        self.items = []\n",
         "All happy families are alike; each unhappy family is unhappy in its own way.",
         "the " * 60]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, word_model_dir):
    tmp = tmp_path_factory.mktemp("insights")
    rows = [{"text": t, "source": SOURCES[i % 3]} for i, t in enumerate(TEXTS)]
    (tmp / "mix.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = run_path(write_config(tmp, {"bytes": tiny_model_dir, "words": word_model_dir}, name="ins",
                                datasets=[{"name": "mix", "path": str(tmp / "mix.jsonl"), "group_by": "source"}],
                                eval={"window": 32, "stride": 16, "batch_size": 4, "device": "cpu"},
                                output={"baseline": "words"}))
    return run.folder, run.results


def _bpb(docs):
    return sum(d["nll"] for d in docs) / sum(d["bytes"] for d in docs) / LN2


def test_summary_sections_carry_the_stored_numbers(run):
    folder, res = run
    md = (folder / "summary.md").read_text()
    for head in ("## NLL by context length", "### bytes · mix", "## Compression baselines",
                 "## Memorisation signals", "## Groups · mix"):
        assert head in md
    by = {r["model"]: r for r in res["results"]}
    # context length: a bin scored in every window and one only in documents' openings, with intervals
    b = by["bytes"]["context_length"]["bins"]
    first, last = b[0], b[-1]
    assert (first["lo"], first["coverage"], last["lo"], last["coverage"]) == (1, "first_window_only", 32, "steady")
    lo, hi = first["bits_per_token_interval"]
    assert first["tokens"] == len(TEXTS) and first["below_min_tokens"]  # one per document: too few to read
    assert f"| 1 | first window only | {first['docs']} | {first['tokens']} (few) | {first['bits_per_token']:.4f} " \
           f"({lo:.4f}–{hi:.4f}) |" in md
    assert "were scored, with context lengths 17–32" in md
    # compression: bits/byte = 8 · compressed bytes / input bytes (hand-checked), ratio = model / best
    c = by["bytes"]["compression"]
    assert c["bytes_in"] == sum(len(t.encode()) for t in TEXTS) == by["bytes"]["metrics"]["bytes"]
    best = min(c["compressors"], key=lambda k: c["compressors"][k]["bytes_out"])
    best_bpb = 8 * c["compressors"][best]["bytes_out"] / c["bytes_in"]
    ratio = by["bytes"]["metrics"]["bits_per_byte"] / best_bpb
    assert c["best"] == best and c["model_to_best_ratio"] == pytest.approx(ratio)
    cells = " | ".join(f"{c['compressors'][n]['bits_per_byte']:.4f}" for n in c["compressors"])
    assert f"| bytes | mix | {by['bytes']['metrics']['bits_per_byte']:.4f} | {cells} | {best} | {ratio:.3f} |" in md
    # groups: per-group bits/byte = the group's NLL over its bytes, from the per-document rows
    for g in SOURCES:
        docs = [d for d in by["bytes"]["per_document"] if d["group"] == g]
        stored = by["bytes"]["groups"]["groups"][g]
        assert stored["bits_per_byte"] == pytest.approx(_bpb(docs))
        assert stored["docs"] == len(docs) == sum(1 for i in range(len(TEXTS)) if SOURCES[i % 3] == g)
        iv = stored["intervals"]["bits_per_byte"]
        assert f"| {g} | {len(docs)} | {stored['bytes']} | {_bpb(docs):.4f} ({iv[0]:.4f}–{iv[1]:.4f}) |" in md
    macro = sum(_bpb([d for d in by["words"]["per_document"] if d["group"] == g]) for g in SOURCES) / 3
    assert f"{macro:.4f} (" in md.split("| macro (mean of 3 groups) |")[1].splitlines()[0]
    # memorisation: one paragraph per model; a flagged document shows its excerpt
    assert [f["doc"] for f in by["bytes"]["memorisation"]["flagged"]] == [9]  # "the the ...": high Min-k
    for r in res["results"]:
        fl = r["memorisation"]["flagged"]
        assert (f"{len(fl)} document" if fl else "No document flagged") in md
        for f in fl:
            assert f"| {f['doc']} | {SOURCES[f['doc'] % 3]} | {', '.join(f['flags'])} | {f['zlib_ratio']:.3f} |" in md


def test_report_html_sections_and_plots(run):
    folder, res = run
    page = (folder / "report.html").read_text()
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads == ["Metrics", "Comparison · mix", "NLL by context length · mix", "Compression baselines",
                     "Memorisation signals · mix", "Groups · mix", "Where the model is surprised · bytes · mix",
                     "Where the model is surprised · words · mix"]
    # comparison bar chart, context-length plot, per-group Δ plot
    assert page.count('src="data:image/png;base64,iVBORw0KGgo') == 3
    assert "Δ bits/byte per group against words · mix" in page
    w = next(r for r in res["results"] if r["model"] == "words")
    bins = w["context_length"]["bins"]
    assert all((x["bits_per_token_interval"] is None) == (x["docs"] < 2) for x in bins)  # one document: no interval
    b = next(x for x in reversed(bins) if x["bits_per_token_interval"])
    lo, hi = b["bits_per_token_interval"]
    assert f"{b['bits_per_token']:.4f}<br><span class=\"ci\">{lo:.4f}–{hi:.4f}</span>" in page
    assert page.count("first window only</td>") >= 8  # bins 1 .. 8-15 of both models
    g = w["groups"]["groups"]["code"]
    assert f"{g['bits_per_byte']:.4f}<br><span class=\"ci\">" in page
    for f in (r for x in res["results"] for r in x["memorisation"]["flagged"]):
        assert f'<td class="wrap">{f["excerpt"]}</td>' in page
    assert page.count('<div class="scroll"><table>') == page.count("<table>")


def test_comparison_adds_compression_gain_and_paired_group_deltas(run):
    folder, res = run
    (table,) = res["comparison"]
    by = {r["model"]: r for r in res["results"]}
    e = next(x for x in table["rows"] if x["model"] == "bytes")
    assert e["compression_ratio"] == by["bytes"]["compression"]["model_to_best_ratio"]
    assert e["gain_64_1024"] is None  # window 32 never reaches 64 tokens of context
    gd = e["groups"]
    assert [g["delta"] for g in gd["groups"]] == sorted(g["delta"] for g in gd["groups"])
    for g in gd["groups"]:
        mine = [d for d in by["bytes"]["per_document"] if d["group"] == g["group"]]
        base = [d for d in by["words"]["per_document"] if d["group"] == g["group"]]
        assert g["delta"] == pytest.approx(_bpb(mine) - _bpb(base))
        assert g["low"] <= g["delta"] <= g["high"]
    assert gd["micro"]["delta"] == pytest.approx(by["bytes"]["metrics"]["bits_per_byte"]
                                                 - by["words"]["metrics"]["bits_per_byte"])
    assert gd["macro"]["delta"] == pytest.approx(sum(g["delta"] for g in gd["groups"]) / 3)
    assert next(x for x in table["rows"] if x["model"] == "words")["groups"] is None
    md = (folder / "comparison.md").read_text()
    assert f"| {e['bits_per_byte']:.4f} | " in md and f" | {e['compression_ratio']:.3f} | – | " in md
    assert "#### Per-group Δ bits/byte · bytes − words" in md
    g0 = gd["groups"][0]
    assert (f"| {g0['group']} | {g0['docs']} | {g0['bits_per_byte']:.4f} | {g0['baseline_bits_per_byte']:.4f} | "
            f"{g0['delta']:+.4f} | [{g0['low']:+.4f}, {g0['high']:+.4f}] |") in md
    assert f"| macro Δ |  |  |  | {gd['macro']['delta']:+.4f} |" in md
    rows = list(csv.DictReader(io.StringIO((folder / "comparison_groups.csv").read_text())))
    assert [r["group"] for r in rows] == [g["group"] for g in gd["groups"]] + ["(micro)", "(macro)"]
    assert float(rows[0]["delta_bpb"]) == pytest.approx(g0["delta"])
    main_csv = list(csv.DictReader(io.StringIO((folder / "comparison.csv").read_text())))
    assert float(next(r for r in main_csv if r["model"] == "bytes")["model_to_best_compressor"]) == \
        pytest.approx(e["compression_ratio"])
    page = (folder / "comparison.html").read_text()
    assert "<h3>Per-group Δ bits/byte · bytes − words</h3>" in page


def test_terminal_form_is_short(run):
    _, res = run
    text = insights_markdown(res["results"], terminal=True)
    assert len(text.splitlines()) < 40 and "### " not in text
    cl = res["results"][0]["context_length"]["bins"]
    assert f"| bytes | mix | {cl[0]['bits_per_token']:.3f}* n={cl[0]['tokens']} |" in text  # too few: count shown
    flagged = len(res["results"][0]["memorisation"]["flagged"])
    assert f"bytes · mix: {flagged} of {len(TEXTS)} documents flagged; most: doc 9 (min_k, z +" in text
    # one model, no comparison: the group plot shows bits/byte instead of Δ
    assert group_plot(res["results"][:1]).startswith(b"\x89PNG")


def test_gain_read_from_the_run_or_from_the_bins():
    bins = [{"lo": 64, "hi": 127, "tokens": 9, "bits_per_token": 4.25}, {"lo": 1024, "hi": 1024, "tokens": 3,
                                                                          "bits_per_token": 3.5}]
    assert context_gain({"bins": bins})["gain"] == 0.75 and gain_text(context_gain({"bins": bins})) == "+0.7500"
    stored = {"gain": 0.5, "interval": [0.25, 0.75]}
    assert gain_text(context_gain({"bins": bins, "gain_64_1024": stored})) == "+0.5000 [+0.2500, +0.7500]"
    assert context_gain({"bins": bins[:1]}) is None and gain_text(None) == "–"
    t = {"headers": ["a", "b"], "rows": [["x|y", {"value": "1.0", "interval": "[-1, +1]"}]]}
    assert md_table(t).splitlines()[2] == "| x\\|y | 1.0 [-1, +1] |"


@pytest.mark.parametrize("width", [1280, 800])
def test_grouped_report_fits_in_chromium(run, tmp_path, width):
    from test_html_report import FIT_CHECK, browse, chromium

    exe = chromium()
    for name in ("report.html", "comparison.html"):
        probe = tmp_path / name
        probe.write_text((run[0] / name).read_text().replace("</body>", FIT_CHECK + "</body>"))
        dom = browse(exe, tmp_path, probe, width, "--dump-dom")
        fit = json.loads(re.search(r'<pre id="fit">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
        assert fit["scrollWidth"] <= width and fit["overflowing"] == [], (name, fit)


def test_bins_with_too_few_tokens_show_their_count_and_are_greyed_out(run):
    from lm_eval_it.report.plots import _first_window_span
    from lm_eval_it.report.sections import context_table
    from lm_eval_it.stats.context.bins import MIN_BIN_TOKENS

    folder, res = run
    page, md = (folder / "report.html").read_text(), (folder / "summary.md").read_text()
    few = 0
    for r in res["results"]:
        t = context_table(r)
        shown = [b for b in r["context_length"]["bins"] if b["tokens"]]
        assert t["muted"] == [i for i, b in enumerate(shown) if b["tokens"] < MIN_BIN_TOKENS]
        assert [b["below_min_tokens"] for b in shown] == [b["tokens"] < MIN_BIN_TOKENS for b in shown]
        for i, b in enumerate(shown):
            assert t["rows"][i][3] == (f"{b['tokens']} (few)" if i in t["muted"] else str(b["tokens"]))
        few += len(t["muted"])
    b32 = res["results"][0]["context_length"]["bins"][-1]                  # the bin at the window size
    assert (b32["lo"], b32["below_min_tokens"]) == (32, True) and "| 32 | first and later windows (" in md
    assert f"| {b32['docs']} | {b32['tokens']} (few) |" in md
    assert few >= 8 and page.count('<tr class="muted">') == few           # greyed out in report.html
    assert f"(few): fewer than {MIN_BIN_TOKENS} scored tokens (1, 2–3, 4–7, 8–15, 32)" in md
    # the plot shades what only first windows scored, from the counts
    cl = res["results"][0]["context_length"]
    assert _first_window_span(cl) == (cl["after_first_window_range"][0] - 0.5,
                                      "lengths < 17: only in first windows (hollow: bin partly or wholly there)")
    none_after = dict(cl, tokens_after_first_window=0, after_first_window_range=None)
    assert _first_window_span(none_after)[0] == cl["window"] + 0.5
