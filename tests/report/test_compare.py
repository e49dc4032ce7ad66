"""Fair comparison: bootstrap intervals, tokenizer normalisation, comparison tables, compare across runs."""

import csv
import io
import json
import math
import re

import numpy as np
import pytest
from conftest import write_config

from lm_eval_it.cli import main
from lm_eval_it.errors import UserError
from lm_eval_it.report.compare.build import build_comparison
from lm_eval_it.stats.intervals import (
    bits_per_byte_interval,
    metric_intervals,
    paired_delta,
    ratio_interval,
)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.  Twice the spaces here.",
    "A second document\r\nwith CRLF line endings and numbers 3.14159.",
    "def f(x):\n    return x * 2   # indented code is hard for word-level tokenizers\n",
    "Short one.",
    "Lists, tuples and dictionaries are built-in types in Python; sets too.",
]


def test_paired_delta_of_identical_models_is_exactly_zero():
    nll, nb = [5.0, 7.0, 9.0], [10, 12, 9]
    d = paired_delta(nll, nb, nll, nb)
    assert d["delta"] == 0.0 and d["low"] == 0.0 and d["high"] == 0.0 and d["significant"] is None  # 3 < 10 docs


def test_paired_delta_detects_a_consistent_improvement_that_unpaired_intervals_miss():
    rng = np.random.default_rng(0)
    nbytes = rng.integers(100, 2000, size=40).astype(float)
    hardness = rng.uniform(0.5, 2.0, size=40)           # documents vary a lot in difficulty
    nll_b = hardness * nbytes
    nll_a = nll_b * 0.98                                 # A is 2% better on every document
    d = paired_delta(nll_a, nbytes, nll_b, nbytes)
    expected = (nll_a.sum() - nll_b.sum()) / nbytes.sum() / math.log(2)
    assert d["delta"] == pytest.approx(expected, rel=1e-12)
    assert d["significant"] is True and d["low"] <= d["delta"] <= d["high"] < 0
    ia, ib = bits_per_byte_interval(nll_a, nbytes), bits_per_byte_interval(nll_b, nbytes)
    assert ia[1] > ib[0]  # the per-model intervals overlap: only the paired test sees the difference


def test_intervals_need_two_documents_and_contain_the_estimate():
    assert ratio_interval([1.0], [2.0]) is None
    assert paired_delta([1.0], [2], [2.0], [2])["low"] is None
    per_doc = [{"nll": n, "tokens": t, "bytes": b, "words": w, "chars": c}
               for n, t, b, w, c in [(10, 5, 20, 4, 20), (30, 9, 40, 8, 39), (5, 3, 9, 2, 9), (50, 20, 70, 14, 70)]]
    iv = metric_intervals(per_doc)
    bpb = 95 / 139 / math.log(2)
    assert iv["bits_per_byte"][0] <= bpb <= iv["bits_per_byte"][1]
    assert iv["token_perplexity"][0] <= math.exp(95 / 37) <= iv["token_perplexity"][1]
    assert metric_intervals(per_doc) == iv  # fixed seed: reproducible


def two_model_config(tmp_path, byte_dir, word_dir, **eval_):
    return write_config(tmp_path, {"bytes": byte_dir, "words": word_dir}, TEXTS, name="cmp", dataset="toy",
                        eval={"window": 32, "stride": 16, "batch_size": 4, "device": "cpu", **eval_},
                        output={"baseline": "bytes"})


def latest(tmp_path, run="cmp"):
    return sorted((tmp_path / "results" / run).iterdir())[-1]


def test_two_tokenizers_same_text(tmp_path, tiny_model_dir, word_model_dir, caplog):
    cfg = two_model_config(tmp_path, tiny_model_dir, word_model_dir)
    assert main(["run", str(cfg), "--quiet", "models.1.dtype=bfloat16"]) == 0
    folder = latest(tmp_path)
    res = json.loads((folder / "results.json").read_text())
    by = {r["model"]: r for r in res["results"]}
    b, w = by["bytes"]["metrics"], by["words"]["metrics"]
    # the same text for both: byte, word and char totals agree exactly; token counts do not
    assert (b["bytes"], b["words"], b["chars"]) == (w["bytes"], w["words"], w["chars"])
    assert b["bytes"] == sum(len(t.encode()) for t in TEXTS)
    assert b["tokens"] > 2 * w["tokens"]
    assert b["tokens_per_byte"] == pytest.approx(b["tokens"] / b["bytes"])
    assert w["tokens_per_word"] == pytest.approx(w["tokens"] / w["words"])
    # losslessness: the byte-level BPE round-trips, the word-level tokenizer does not
    assert by["bytes"]["roundtrip"]["lossy_documents"] == 0
    lossy = by["words"]["roundtrip"]
    assert lossy["lossy_documents"] == 5 and lossy["lossy_bytes"] > 0 and lossy["sample"]["document"] == 0
    assert "LOSSY TOKENIZER: words" in caplog.text
    # the comparison, in three formats
    (table,) = res["comparison"]
    assert table["baseline"] == "bytes" and table["token_comparable"] is False
    assert [e["bits_per_byte"] for e in table["rows"]] == sorted(e["bits_per_byte"] for e in table["rows"])
    delta = next(e for e in table["rows"] if e["model"] == "words")["delta"]
    assert delta["delta"] == pytest.approx(w["bits_per_byte"] - b["bits_per_byte"], rel=1e-9)
    md = (folder / "comparison.md").read_text()
    assert "| words |" in md and "†" in md and "not comparable" in md
    assert {e["model"]: e["dtype"] for e in table["rows"]} == {"bytes": "float32", "words": "bfloat16"}
    assert "| words | bfloat16 |" in md and "| bytes | float32 |" in md  # each model's dtype, beside it
    rows = list(csv.DictReader(io.StringIO((folder / "comparison.csv").read_text())))
    assert {r["model"] for r in rows} == {"bytes", "words"} and rows[0]["token_comparable"] == "False"
    page = (folder / "comparison.html").read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64," in page and "<link" not in page


def test_compare_across_runs_and_refusal(tmp_path, tiny_model_dir, word_model_dir, capsys):
    cfg = two_model_config(tmp_path, tiny_model_dir, word_model_dir)
    assert main(["run", str(cfg), "--quiet"]) == 0
    assert main(["run", str(cfg), "--quiet", "eval.stride=8", "output.run_name=cmp8"]) == 0
    out = tmp_path / "cmpout"
    assert main(["compare", str(tmp_path / "results" / "cmp"), str(latest(tmp_path, "cmp8")),
                 "--out", str(out), "--baseline", "bytes @ cmp8/" + latest(tmp_path, "cmp8").name,
                 "--allow-protocol-mismatch"]) == 0  # stride 16 vs 8
    md = (out / "comparison.md").read_text()
    main_table = next(b for b in md.split("\n\n") if b.startswith("| model |"))
    assert main_table.count("| bytes @ ") == 2 and main_table.count("| words @ ") == 2
    assert md.count("| bytes @ ") == 8  # and in each of the three detail tables
    assert (out / "comparison.csv").is_file() and (out / "comparison.html").is_file()
    # a different text under the same dataset name cannot be paired
    res = json.loads((latest(tmp_path, "cmp8") / "results.json").read_text())
    res["results"][0]["dataset_fingerprint"] = "0" * 64
    with pytest.raises(UserError, match="documents can only be paired on identical text"):
        build_comparison(res["results"])
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "nothing-here")]) == 2
    assert "is neither a run folder nor a run name" in capsys.readouterr().err


def test_window_in_bytes_converts_per_model(tmp_path, tiny_model_dir, word_model_dir):
    cfg = two_model_config(tmp_path, tiny_model_dir, word_model_dir, window=120, stride=60, window_unit="bytes")
    assert main(["run", str(cfg), "--quiet"]) == 0
    res = json.loads((latest(tmp_path) / "results.json").read_text())
    for r in res["results"]:
        bpt = r["metrics"]["bytes_per_token"]
        assert r["eval"]["window"] == max(2, round(120 / bpt))
        assert r["eval"]["stride"] == max(1, min(r["eval"]["window"], round(60 / bpt)))
    windows = {r["model"]: r["eval"]["window"] for r in res["results"]}
    assert windows["bytes"] > 2 * windows["words"]  # about the same text as context for both


def test_prefix_none_with_two_tokenizers_says_the_bytes_differ(tmp_path, tiny_model_dir, word_model_dir):
    cfg = two_model_config(tmp_path, tiny_model_dir, word_model_dir, prefix="none")
    assert main(["run", str(cfg), "--quiet"]) == 0
    folder = latest(tmp_path)
    res = json.loads((folder / "results.json").read_text())
    scored = {r["model"]: r["metrics"]["bytes"] for r in res["results"]}
    assert scored["bytes"] != scored["words"]  # each tokenizer's unscored first token covers other bytes
    (table,) = res["comparison"]
    assert table["same_bytes"] is False
    assert {e["model"]: e["bytes"] for e in table["rows"]} == scored
    md = (folder / "comparison.md").read_text()
    main_table = next(b for b in md.split("\n\n") if b.startswith("| model |")).splitlines()
    assert "bytes" in main_table[0].split(" | ")
    for line in main_table[2:]:
        model = line.split(" | ")[0].strip("| ")
        assert f" {scored[model]:,}‡ |" in line
    note = next(line for line in md.splitlines() if "‡ The models scored different bytes" in line)
    assert all(f"{m}: {n:,}" in note for m, n in scored.items()) and "not over the same bytes" in note
    summary = (folder / "summary.md").read_text()
    assert "over the same text for every model" not in summary
    assert "over the same text for every model" not in (folder / "report.html").read_text()


PARAGRAPHS = ("The quick brown fox jumps over the lazy dog. It was a bright cold day in April.\n\n"
              "Call me Ishmael. Some years ago, never mind how long precisely, I went to sea.\n\n"
              "All happy families are alike; each unhappy family is unhappy in its own way.\n")


def _gain_cells(md: str) -> dict[str, str]:
    """model -> its 'gain 64→1024' cell in a comparison.md table."""
    block = next(b for b in md.split("\n\n") if b.startswith("| model |") and "gain 64→1024" in b.splitlines()[0])
    lines = [x for x in block.splitlines() if x.startswith("| ") and not x.startswith("|--")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    col = head.index("gain 64→1024 bits/token")
    return {cells[0]: cells[col] for x in lines[1:] if (cells := [c.strip() for c in x.strip("|").split("|")])[0]
            != "model"}


def test_compare_shows_dash_for_a_gain_over_an_empty_bin(tmp_path, tiny_model_dir, capsys):
    (tmp_path / "para.txt").write_text(PARAGRAPHS)
    res = tmp_path / "results"
    for name in ("a", "b"):
        assert main(["run", "--model", str(tiny_model_dir), "--data", str(tmp_path / "para.txt"), "--window", "512",
                     "--name", name, "--out", str(res), "--quiet"]) == 0
    (folder,) = (res / "a").iterdir()
    row = json.loads((folder / "results.json").read_text())["results"][0]
    gain = row["context_length"]["gain_64_1024"]
    assert row["metrics"]["tokens"] < 256 and gain["gain"] is None and gain["hi_range"] == [256, 511]
    capsys.readouterr()
    assert main(["compare", "a", "b", "--dir", str(res)]) == 0
    (out,) = (res / "compare").iterdir()
    md = (out / "comparison.md").read_text()
    assert set(_gain_cells(md).values()) == {"–"} and len(_gain_cells(md)) == 2
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", (out / "comparison.html").read_text())
    assert "nan" not in md and "nan" not in html  # not in the text: a plot's base64 may spell it by chance


def test_compare_leaves_no_folder_when_writing_fails(tmp_path, tiny_model_dir, monkeypatch, capsys):
    import lm_eval_it.report.compare.build as compare

    (tmp_path / "para.txt").write_text(PARAGRAPHS)
    res = tmp_path / "results"
    assert main(["run", "--model", str(tiny_model_dir), "--data", str(tmp_path / "para.txt"), "--window", "64",
                 "--name", "a", "--out", str(res), "--quiet"]) == 0

    def broken(folder, *args, **kwargs):
        (folder / "comparison.md").write_text("half")
        raise UserError("disk full")

    monkeypatch.setattr(compare, "write_comparison", broken)
    capsys.readouterr()
    assert main(["compare", "a", "--dir", str(res)]) == 2
    assert "error: disk full" in capsys.readouterr().err
    assert not (res / "compare").exists()
    keep = tmp_path / "mine"
    keep.mkdir()
    assert main(["compare", "a", "--dir", str(res), "--out", str(keep / "new" / "cmp")]) == 2
    assert keep.is_dir() and not (keep / "new").exists()   # only what compare made is removed


def test_gain_cells_and_footnote_name_the_same_bins(run_config, tiny_model_dir, word_model_dir):
    paras = [p for p in PARAGRAPHS.split("\n") if p]
    texts = [" ".join(paras * 4), " ".join(paras[::-1] * 4)]   # ~500 byte-level tokens, ~170 words each
    run = run_config({"bytes": tiny_model_dir, "words": word_model_dir}, texts, name="cmp", dataset="long",
                     eval={"window": 512, "device": "cpu"}, output={"baseline": "bytes"})
    folder = run.folder
    by = {r["model"]: r for r in run.results["results"]}
    assert min(d["tokens"] for d in by["bytes"]["per_document"]) >= 256 > max(
        d["tokens"] for d in by["words"]["per_document"])
    g = by["bytes"]["context_length"]["gain_64_1024"]
    md = (folder / "comparison.md").read_text()
    cells = _gain_cells(md)
    iv = g["interval"]
    assert cells["bytes"] == f"{g['gain']:+.4f} [{iv[0]:+.4f}, {iv[1]:+.4f}] (64–127 → 256–511)"
    # the footnote says what the cells show: which bins, and when a dash
    note = next(x for x in md.splitlines() if x.startswith("2 documents;"))
    assert "64–127-token context bin minus in the 512–1023 bin" in note
    assert "the cell names the two bins it compares instead, e.g. (64–127 → 256–511)" in note
    assert "one of the two bins scored no tokens" in note
    # the words model never reaches 256 tokens of context: a dash, never "+nan"
    assert cells["words"] == "–" and by["words"]["context_length"]["gain_64_1024"]["gain"] is None


def _table(docs, scored):
    row = {"model": "m", "docs": docs, "documents_scored": scored, "run": None, "protocol": None,
           "lossy_documents": 0, "bytes": 100, "prefix": "auto"}
    return {"rows": [row, dict(row, model="n")], "baseline": "m", "token_comparable": True}


def test_few_documents_note_counts_scored_documents_not_all():
    from lm_eval_it.report.compare.build import _note, scored_documents

    note = _note(_table(docs=12, scored=8))    # 12 documents, 4 of them scoring nothing (one token, prefix none)
    assert note.startswith("8 documents;") and "Few documents (8 < 10)" in note
    assert "Few documents" not in _note(_table(docs=12, scored=12))
    assert scored_documents({"intervals": {"documents": 8}}, [3, 0, 5]) == 8
    assert scored_documents({}, [3, 0, 5]) == 2


def test_compare_shows_dash_for_nan_delta_and_interval():
    from lm_eval_it.report.compare.extras import group_rows
    from lm_eval_it.report.compare.tables import delta_cells, main_cells
    from lm_eval_it.stats.groups import compare_groups

    assert delta_cells({"delta": np.float32("nan"), "low": None, "high": None}) == ("–", "–", "")
    assert delta_cells({"delta": 0.1, "low": math.nan, "high": math.nan, "significant": None})[1] == "–"
    # a group where nothing was scored: its Δ is NaN, and so is the macro Δ
    def doc(i, g, nll, b):
        return {"index": i, "group": g, "nll": nll, "bytes": b}

    a = [doc(0, "x", 5.0, 10), doc(1, "x", 6.0, 10), doc(2, "y", 0.0, 0)]
    b = [doc(0, "x", 5.5, 10), doc(1, "x", 6.1, 10), doc(2, "y", 0.0, 0)]
    gd = compare_groups(a, b)
    for g in gd["groups"]:
        g["bits_per_byte"] = g["baseline_bits_per_byte"] = math.nan if g["group"] == "y" else 0.8
    text = " ".join(" ".join(r) for r in group_rows({"groups": gd}))
    assert "nan" not in text.lower() and "–" in text
    e = {"model": "m", "dtype": "float32", "bits_per_byte": np.float64("nan"), "bits_per_byte_ci": [math.nan, 1.0],
         "delta": {"delta": math.nan, "low": None}, "bytes": 0, "tokens_per_second": None}
    for html in (False, True):
        cells = main_cells(e, {"same_bytes": True}, html)
        assert "nan" not in json.dumps(cells, default=str).lower()
