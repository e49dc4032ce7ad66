"""``lm-eval-it show``: the views of real tiny runs as a person sees them in a terminal and in a log; the
difference's characters add up to the documents' totals; what it refuses, in one line with exit code 2;
paging only on a terminal."""

import io
import json
import math
import re
import shutil
import sys

import pytest
from conftest import corpus, run_path, write_config

from lm_eval_it.cli import main
from lm_eval_it.report import show as views_show
from lm_eval_it.report import views_terminal as terminal
from lm_eval_it.views.select import aligned_pair, difference_documents
from lm_eval_it.views.store import load

TEXTS = [t for t in corpus()[:40] if t.strip()][:8]
BG = re.compile(r"\x1b\[48;2;\d+;\d+;\d+m")
ESCAPES = re.compile(r"\x1b\[[0-9;]*m")
EVAL = {"window": 64, "stride": 32}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model_dir, word_model_dir):
    """Run ``a``: the tiny model (show 1, document 5 named); ``pair``: the tiny and the word-level model
    (another tokenizer); ``fewer``: the word-level model on 5 of the 8 documents."""
    root = tmp_path_factory.mktemp("show")
    views = {"views": {"show": 1, "documents": [5]}}
    out = {}
    for name, models, texts, output in (("a", {"tiny": tiny_model_dir}, TEXTS, views),
                                        ("pair", {"tiny": tiny_model_dir, "word": word_model_dir}, TEXTS, None),
                                        ("fewer", {"word": word_model_dir}, TEXTS[:5], None)):
        out[name] = run_path(write_config(root, models, texts, name=name, eval=EVAL, output=output)).folder
    return out


def _show(*args, capsys):
    code = main(["show", *map(str, args)])
    got = capsys.readouterr()
    return code, got.out, got.err


def test_a_terminal_gets_24_bit_backgrounds_and_the_documents_text(runs, monkeypatch):
    monkeypatch.setenv("LINES", "100000")  # taller than the output: no pager
    monkeypatch.setenv("COLUMNS", "5000")  # wider than any line: no wrapping
    monkeypatch.delenv("NO_COLOR", raising=False)
    buf = io.StringIO()
    views_show.show(str(runs["a"]), doc=2, out=buf, tty=True)
    text = buf.getvalue()
    assert len(BG.findall(text)) > 100
    assert TEXTS[2] in ESCAPES.sub("", text).replace(terminal.RESET, "")
    assert "document 2 (named with --doc)" in ESCAPES.sub("", text)


@pytest.mark.parametrize("how", ["not a tty", "--plain", "NO_COLOR"])
def test_a_log_gets_no_escape_codes_but_each_documents_header_text_and_shading(runs, capsys, monkeypatch, how):
    monkeypatch.setenv("LINES", "100000")
    if how == "not a tty":
        code, text, _ = _show(runs["a"], capsys=capsys)
    else:
        if how == "NO_COLOR":
            monkeypatch.setenv("NO_COLOR", "1")
        buf = io.StringIO()
        views_show.show(str(runs["a"]), plain=how == "--plain", out=buf, tty=True)
        code, text = 0, buf.getvalue()
    assert code == 0 and "\x1b" not in text
    vs = load(next(runs["a"].glob("views-*.npz")))
    ranked = sorted(vs.docs, key=lambda d: vs.docs[d].bits_per_byte)
    for d, why in ((ranked[-1], "highest bits/byte"), (ranked[0], "lowest bits/byte"),
                   (5, "named in output.views.documents")):
        assert f"-- document {d} ({why}): {vs.docs[d].bits_per_byte:.4f} bits/byte" in text
    assert text.count("-- document ") == 3 and "whole, " in text
    assert text.count("\n   most surprising tokens (bits): '") == 3
    assert TEXTS[5].splitlines()[0] in text and "█" in text and "bits per token: ' ' <" in text


def test_flagged_documents_are_shown_with_their_reason(runs, tmp_path, capsys):
    folder = shutil.copytree(runs["a"], tmp_path / "flagged")
    results = json.loads((folder / "results.json").read_text())
    vs = load(next(folder.glob("views-*.npz")))
    ranked = sorted(vs.docs, key=lambda d: vs.docs[d].bits_per_byte)
    doc = next(d for d in ranked[1:-1] if d != 5)  # not shown for another reason
    results["results"][0]["memorisation"]["flagged"] = [{"doc": doc}]
    (folder / "results.json").write_text(json.dumps(results))
    code, text, _ = _show(folder, capsys=capsys)
    assert code == 0 and f"-- document {doc} (flagged by the memorisation signals)" in text


def test_every_row_with_views_is_shown_and_model_picks_one(runs, capsys):
    _, both, _ = _show(runs["pair"], capsys=capsys)
    assert "== tiny on d: surprisal" in both and "== word on d: surprisal" in both
    _, one, _ = _show(runs["pair"], "--model", "word", "--doc", 0, capsys=capsys)
    assert "== tiny on d" not in one and one.count("-- document 0 (named with --doc)") == 1


def test_the_difference_view_marks_each_character_and_its_sums_are_the_documents_totals(runs, capsys):
    code, text, _ = _show(runs["a"], "--compare", runs["pair"], "--other-model", "word", capsys=capsys)
    assert code == 0 and "\x1b" not in text
    assert "== word against tiny on d: Δ bits = bits(word) − bits(tiny) on each character" in text
    pair = json.loads((runs["pair"] / "results.json").read_text())["results"]
    nll = {(r["model"], d["index"]): d["nll"] for r in pair for d in r["per_document"]}
    a = load(next(runs["a"].glob("views-*.npz")))
    b = load(runs["pair"] / "views-word-d.npz")
    picks = dict(difference_documents(a, b, 1))
    assert picks and text.count("-- document ") == len(picks)
    for d in a.docs:
        va, vb = aligned_pair(a, b, d)
        delta = terminal.difference_values(va, vb)
        want = (nll[("word", d)] - nll[("tiny", d)]) / math.log(2)  # the results' totals, whole documents
        assert not va.cut and abs(delta.sum() - want) <= 1e-9
        if d in picks:
            assert f"-- document {d} ({picks[d]}): " in text and f"Δ bits {delta.sum():+.2f} over all" in text
    assert "▲" in text and "▼" in text
    assert "top words by total Δ bits (word − tiny), over the dataset (8 documents):" in text
    assert "top tokens of tiny by total Δ bits (word − tiny), over the dataset (8 documents):" in text


def test_one_run_with_two_models_compares_them_with_model(runs, capsys):
    code, text, _ = _show(runs["pair"], "--compare", runs["pair"], "--model", "tiny", "--doc", 3, capsys=capsys)
    assert code == 0 and "== word against tiny on d" in text and text.count("-- document 3 (named with --doc)") == 1


@pytest.mark.parametrize("args, message", [
    (lambda r, t: [t], "holds no complete run"),
    (lambda r, t: [r["a"], "--doc", 42], "--doc 42: d has 8 documents (0 to 7)"),
    (lambda r, t: [r["a"], "--model", "tinny"], "--model: got 'tinny', expected one of ['tiny']"),
    (lambda r, t: [r["a"], "--compare", r["fewer"]], "cannot compare tiny and word on d: the datasets differ"),
    (lambda r, t: [r["a"], "--compare", r["pair"]], "pick B with --other-model"),
    (lambda r, t: [r["pair"], "--compare", r["a"]], "pick A with --model"),
    (lambda r, t: [r["a"], "--compare", r["a"]], "has no views of another model on d"),
    (lambda r, t: [r["a"], "eval.stride=3"], "show takes run folders, not overrides"),
])
def test_bad_input_is_refused_in_one_line_with_exit_code_2(runs, tmp_path, capsys, args, message):
    code, out, err = _show(*args(runs, tmp_path), capsys=capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_a_run_without_views_is_refused_in_one_line(runs, tmp_path, capsys):
    folder = shutil.copytree(runs["a"], tmp_path / "old")
    results = json.loads((folder / "results.json").read_text())
    for row in results["results"]:
        row["views"] = None
    (folder / "results.json").write_text(json.dumps(results))
    code, out, err = _show(folder, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "has no token-level views" in err
    (folder / "results.json").write_text(json.dumps(json.loads((runs["a"] / "results.json").read_text())))
    next(folder.glob("views-*.npz")).unlink()
    code, out, err = _show(folder, capsys=capsys)
    assert code == 2 and err.count("\n") == 1 and "the views file of tiny on d is missing" in err


def test_only_a_terminal_pages_and_only_output_longer_than_it(runs, tmp_path, monkeypatch):
    paged = tmp_path / "paged.txt"
    monkeypatch.setenv("PAGER", f"{sys.executable} -c \"import sys; open(sys.argv[1], 'wb')"
                                f".write(sys.stdin.buffer.read())\" {paged}")
    monkeypatch.setenv("LINES", "24")
    buf = io.StringIO()
    views_show.show(str(runs["a"]), out=buf, tty=False)
    assert not paged.exists() and buf.getvalue().count("\n") > 24
    views_show.show(str(runs["a"]), out=buf, tty=True, plain=True)
    assert paged.read_text(encoding="utf-8") == buf.getvalue()  # the same text, through the pager
    assert not views_show.wants_pager("a\nb\n", True, 24) and views_show.wants_pager("a\n" * 25, True, 24)


def test_show_has_help_naming_its_flags(capsys):
    with pytest.raises(SystemExit) as e:
        main(["show", "--help"])
    text = capsys.readouterr().out
    assert e.value.code == 0 and all(f in text for f in ("--doc", "--compare", "--other-model", "--plain"))


def test_a_reader_that_stops_early_ends_the_output_quietly():
    class Closed(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    views_show.write("text\n", Closed())  # no exception: `lm-eval-it show RUN | head` exits 0
