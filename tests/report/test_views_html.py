"""The views in report.html and comparison.html: the per-character Δ drawn adds up to each document's Δ total,
the hover text is in the DOM, everything is escaped, and runs without views render as before."""

import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import corpus, run_path, write_config
from views_run import ESCAPES, MODELS, NAMED, TEXTS, UNICODE, views_run

from lm_eval_it.cli import main
from lm_eval_it.errors import UserError
from lm_eval_it.report.summary import report_html
from lm_eval_it.report.views_html import difference_runs, surprisal_runs
from lm_eval_it.report.views_sections import ViewSource, comparison_views
from lm_eval_it.views.select import aligned_pair, common
from lm_eval_it.views.store import DocView, ViewSet, load, save

LN2 = math.log(2)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, word_model_dir):
    return views_run(tmp_path_factory, tiny_model_dir, word_model_dir)


def _views(run, model):
    res = json.loads((run / "results.json").read_text())
    row = next(r for r in res["results"] if r["model"] == model)
    return row, load(run / row["views"]["file"])


class Docs(HTMLParser):
    """Each ``div.vdoc`` of a page: its header text before it and its runs ``(class, title, text)``."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.docs, self.head, self.heads, self.run, self.depth = [], None, [], None, 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "vdoc":
            self.docs.append([])
            self.depth = 1
        elif tag == "p" and a.get("class") == "vhead":
            self.head = ""
        elif self.depth and tag == "i":
            self.run = [a.get("class"), a.get("title"), ""]

    def handle_endtag(self, tag):
        if tag == "div" and self.depth:
            self.depth = 0
        elif tag == "p" and self.head is not None:
            self.heads.append(self.head)
            self.head = None
        elif tag == "i" and self.run is not None:
            self.docs[-1].append(tuple(self.run))
            self.run = None

    def handle_data(self, data):
        if self.head is not None:
            self.head += data
        elif self.run is not None:
            self.run[2] += data
        elif self.depth:
            self.docs[-1].append((None, None, data))


def parse(page: str, start: str) -> Docs:
    """The documents of the page's part that begins at ``start`` (up to the next ``<h2>`` or ``<h3>``)."""
    part = page[page.index(start):]
    ends = [i for i in (part.find("<h2>", 1), part.find("<h3>", 1)) if i > 0]
    p = Docs()
    p.feed(part[: min(ends)] if ends else part)
    return p


def test_each_documents_drawn_delta_sums_to_its_delta_total(run):
    """Per character, the Δ drawn × its characters adds up to bits(B) − bits(A) of the document, to 1e-9."""
    (_, a), (_, b) = _views(run, MODELS[0]), _views(run, MODELS[1])
    assert a.complete and b.complete and a.tokenizer != b.tokenizer
    checked = 0
    for d in common(a, b):
        va, vb = aligned_pair(a, b, d)
        runs = difference_runs(va, vb, max_chars=10 ** 9)
        assert "".join(r["x"] for r in runs) == va.text.replace("\r\n", "\n").replace("\r", "\n")
        assert sum(r["n"] for r in runs) == len(va.text)
        drawn = math.fsum(r["d"] * r["n"] for r in runs)
        assert abs(drawn - (vb.bits - va.bits)) <= 1e-9, (d, drawn, vb.bits - va.bits)
        checked += 1
    assert checked == len(TEXTS)


def test_the_difference_view_in_comparison_html_draws_those_runs(run):
    """The page's runs for a drawn document are exactly difference_runs: text, colour class and hover text."""
    page = (run / "comparison.html").read_text()
    assert "<h3>Where words differs from bytes</h3>" in page
    (_, a), (row, b) = _views(run, MODELS[0]), _views(run, MODELS[1])
    p = parse(page, "<h3>Where words differs from bytes</h3>")
    assert p.docs and len(p.docs) == len(p.heads)
    for head, drawn in zip(p.heads, p.docs):
        d = int(head.split()[1])
        va, vb = aligned_pair(a, b, d)
        runs = difference_runs(va, vb, row["views"]["max_chars"])
        assert drawn == [(r["c"], r["t"], r["x"]) for r in runs]
        if len(TEXTS[d]) <= row["views"]["max_chars"]:
            assert abs(math.fsum(r["d"] * r["n"] for r in runs) - (vb.bits - va.bits)) <= 1e-9
        delta = b.docs[d].bits_per_byte - a.docs[d].bits_per_byte
        assert f"Δ {delta:+.4f} bits/byte (whole document)" in head
        assert ("words worse" in head) == (delta > 0)
    first = p.docs[0][0][1]  # hover: both models' covering tokens with their bits, and the Δ
    assert first.startswith("A `") and "\nB " in first and first.endswith(" bits/char")


def test_top_lists_are_over_the_dataset_with_counts(run):
    page = (run / "comparison.html").read_text()
    part = page[page.index("<h3>Where words differs from bytes</h3>"):]
    assert "<h4>Top words: total Δ bits of words against bytes</h4>" in part
    assert "<h4>Top tokens of bytes: total Δ bits of words against bytes</h4>" in part
    assert part.count(f"Totals over the dataset ({len(TEXTS)} documents).") == 2
    assert "<caption>words needs more bits (worse)</caption>" in part
    assert "<caption>words needs fewer bits (better)</caption>" in part


def test_hover_text_of_a_token_holds_its_exact_nll_bits(run):
    page = (run / "report.html").read_text()
    _, vs = _views(run, MODELS[0])
    p = parse(page, "<h2>Where the model is surprised · bytes · d</h2>")
    # a document without CRs: its drawn characters are its own, one for one
    head, drawn = next((h, r) for h, r in zip(p.heads, p.docs) if "\r" not in vs.docs[int(h.split()[1])].text)
    v = vs.docs[int(head.split()[1])]
    raw = v.text.encode()
    at = np.cumsum([0] + [len(x) for _, _, x in drawn])
    limit = len(v.text[:2500].encode())
    whole = [t for t in range(len(v.nll)) if v.length[t] and v.start[t] + v.length[t] <= limit
             and _decodes(raw, v.start[t], v.length[t]) and _decodes(raw, 0, v.start[t])]
    checked = 0
    for t in (whole[0], whole[len(whole) // 2], whole[-1]):  # the run whose text is token t's own
        s, n = int(v.start[t]), int(v.length[t])
        k = int(np.searchsorted(at, len(raw[:s].decode()), side="right") - 1)
        cls, title, text = drawn[k]
        token = raw[s: s + n].decode()
        assert text == token and title.startswith(f"`{repr(token)[1:-1]}`\n")
        bits = v.nll[t] / LN2
        assert f"\n{bits:.2f} bits · {n} B · ctx {int(v.context[t])} · H {v.entropy[t] / LN2:.2f}" in title
        assert cls == f"s{min(32, round(bits / 0.5))}"
        checked += 1
    assert checked == 3


def _decodes(raw: bytes, s, n) -> bool:
    try:
        raw[s: s + n].decode()
        return True
    except UnicodeDecodeError:
        return False


def test_surprisal_sections_per_row_draw_the_chosen_documents_whole_text_escaped(run):
    page = (run / "report.html").read_text()
    res = json.loads((run / "results.json").read_text())
    assert page.count("<h2>Where the model is surprised · ") == 2
    assert page.index("<h2>Where the model is surprised · bytes · d</h2>") < page.index("<h2>Plots</h2>")
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &#34;double&#34;" in page
    assert page.count('<style>\n.vdoc{') == 1  # the views' CSS once per page
    for row in res["results"]:
        vs = load(run / row["views"]["file"])
        p = parse(page, f"<h2>Where the model is surprised · {row['model']} · d</h2>")
        shown = [int(h.split()[1]) for h in p.heads]
        assert set(NAMED) <= set(shown) and len(shown) == len(set(shown)) >= 6
        for d, head, drawn in zip(shown, p.heads, p.docs):
            assert "".join(x for _, _, x in drawn) == TEXTS[d][:2500].replace("\r\n", "\n")
            assert ("cut at 2500 characters" in head) == (len(TEXTS[d]) > 2500)
            assert f"{vs.docs[d].bits_per_byte:.4f} bits/byte (whole document)" in head


def test_a_character_split_between_two_tokens_names_both():
    text = "é!"  # é is two bytes: token 0 holds its first byte, token 1 its second and the "!"
    v = DocView(0, text, np.array([0, 1]), np.array([1, 2]), np.array([LN2, 2 * LN2]), np.array([0, 1]))
    runs = surprisal_runs(v, 100)
    assert [r["x"] for r in runs] == ["é", "!"]
    assert runs[0]["t"] == "`\ufffd`\n1.00 bits · 1 B · ctx 0\n`\ufffd!`\n2.00 bits · 2 B · ctx 1"  # partial bytes: �
    assert runs[0]["c"] == "s2" and runs[1]["c"] == "s4"


def test_unscored_text_is_drawn_uncoloured():
    v = DocView(0, "ab cd", np.array([2]), np.array([3]), np.array([LN2]), np.array([1]))
    assert [(r["x"], r["c"]) for r in surprisal_runs(v, 100)] == [("ab", None), (" cd", "s2")]


def _toy(tmp_path, name, text):
    d = DocView(0, text, np.array([0]), np.array([len(text)]), np.array([1.0]), np.array([0]))
    save(tmp_path / f"{name}.npz", ViewSet(name, "d", {0: d}, True, 1))
    return ViewSource(tmp_path / f"{name}.npz")


def test_views_of_different_texts_leave_a_one_line_note_or_are_refused_when_asked_for(tmp_path):
    sources = {("A", "d"): _toy(tmp_path, "A", "same start"), ("B", "d"): _toy(tmp_path, "B", "other text")}
    table = {"baseline": "A", "dataset": "d", "rows": [{"model": "A"}, {"model": "B"}]}
    html = comparison_views(table, sources)
    assert html == ("<h3>Where B differs from A</h3>\n<p class=\"note\">Not drawn: cannot compare A and B on d: "
                    "document 0&#39;s text differs.</p>")
    with pytest.raises(UserError, match="document 0's text differs"):
        comparison_views(table, sources, strict=True)
    assert comparison_views(table, {}) == ""  # no views: nothing, unless they were asked for
    with pytest.raises(UserError, match="^no difference views on d: the baseline A has no views file$"):
        comparison_views(table, {}, strict=True)
    del sources[("A", "d")]
    assert "the baseline A recorded no views on d" in comparison_views(table, sources)


def test_a_run_without_views_renders_as_before(run_config, tiny_model_dir):
    texts = [t for t in corpus()[:10] if t.strip()][:3]
    r = run_config({"m": tiny_model_dir, "m2": tiny_model_dir}, texts, eval={"window": 64, "stride": 64},
                   output={"views": {"enabled": False}, "plots": False})
    page = (r.folder / "report.html").read_text()
    assert "vdoc" not in page and "Where the model is surprised" not in page
    assert report_html(r.results, folder=r.folder) == report_html(r.results)
    comparison = (r.folder / "comparison.html").read_text()
    assert "differs from" not in comparison and "vdoc" not in comparison


def test_compare_cli_draws_the_difference_across_runs_and_refuses_missing_views_when_asked(
        tmp_path, tiny_model_dir, word_model_dir, capsys):
    texts = TEXTS[:4]
    ev = {"window": 64, "stride": 32}
    a = run_path(write_config(tmp_path, {"bytes": tiny_model_dir}, texts, name="a", eval=ev)).folder
    b = run_path(write_config(tmp_path, {"words": word_model_dir}, texts, name="b", eval=ev)).folder
    c = run_path(write_config(tmp_path, {"plain": word_model_dir}, texts, name="c", eval=ev,
                              output={"views": {"enabled": False}})).folder
    assert main(["compare", str(a), str(b), "--baseline", "bytes", "--out", str(tmp_path / "ab"), "--views"]) == 0
    page = (tmp_path / "ab" / "comparison.html").read_text()
    assert "<h3>Where words differs from bytes</h3>" in page and page.count('<div class="vdoc">') >= 2
    assert f"Totals over the dataset ({len(texts)} documents)." in page
    assert main(["compare", str(a), str(c), "--baseline", "bytes", "--out", str(tmp_path / "ac")]) == 0
    assert "differs from" not in (tmp_path / "ac" / "comparison.html").read_text()
    capsys.readouterr()
    assert main(["compare", str(a), str(c), "--baseline", "bytes", "--out", str(tmp_path / "ac2"), "--views"]) == 2
    err = capsys.readouterr().err
    assert err == "error: no difference views on d: plain recorded none\n"
    assert not (tmp_path / "ac2").exists()


def test_escaped_and_unicode_documents_are_recorded(run):
    _, vs = _views(run, MODELS[0])
    assert vs.docs[0].text == ESCAPES and vs.docs[1].text == UNICODE


def test_the_surprisal_sections_stay_small(run):
    """About 70 bytes per drawn token (a short hover text, one-letter tags, classes, the CSS once)."""
    page = (run / "report.html").read_text()
    part = page[page.index("<h2>Where the model is surprised · "):page.index("<h2>Plots</h2>")]
    tokens = part.count("<i class=s")
    assert tokens > 1000 and len(part.encode()) / tokens < 90, len(part.encode()) / tokens
