"""report.html and comparison.html: rendered from the results dict by jinja2 templates, self-contained,
and laid out so that nothing overflows the page at 1280 and 800 px (checked in headless chromium)."""

import json
import os
import re

import pytest
import torch
from browser import FIT_CHECK, browse, chromium
from conftest import run_path, write_config

from lm_eval_it.report.summary import report_html
from lm_eval_it.stats.temperature.best import outward

TEXTS = ["The quick brown fox jumps over the lazy dog.  Twice the spaces here.",
         "A second document\r\nwith CRLF line endings and numbers 3.14159.",
         "def f(x):\n    return x * 2   # indented code is hard for word-level tokenizers\n",
         "Lists, tuples and dictionaries are built-in types in Python; sets too. " * 3]
MODELS = ["HuggingFaceTB-SmolLM2-135M-Instruct-bytes", "SmolLM2-135M-int8-candidate", "word-level-baseline"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, word_model_dir):
    """One end-to-end run: three models (one a KL candidate of another), a 9-temperature sweep, two datasets."""
    from conftest import byte_level_tokenizer
    from transformers import AutoModelForCausalLM

    tmp = tmp_path_factory.mktemp("html")
    nudged = tmp / "nudged"
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    torch.manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 0.03 * torch.randn_like(p))
    model.save_pretrained(nudged)
    byte_level_tokenizer().save_pretrained(nudged)
    for name, texts in (("toy", TEXTS), ("toy-reversed", [t[::-1] for t in TEXTS])):
        (tmp / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    models = [{"name": MODELS[0], "path": str(tiny_model_dir)},
              {"name": MODELS[1], "path": str(nudged), "compare_to": MODELS[0]},
              {"name": MODELS[2], "path": str(word_model_dir)}]
    return run_path(write_config(tmp, models, name="html", output={"baseline": MODELS[0]},
                                 datasets=[{"name": n, "path": str(tmp / f"{n}.jsonl")} for n in ("toy", "toy-reversed")],
                                 eval={"window": 32, "stride": 16, "batch_size": 4, "device": "cpu",
                                       "temperatures": [0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.3, 1.6]})).folder


def test_report_sections_render_from_results(run):
    page = (run / "report.html").read_text()
    res = json.loads((run / "results.json").read_text())
    assert page.startswith("<!doctype html>") and "<link" not in page and "<script" not in page
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads[0] == "Metrics"
    assert "Under each value: its 95% t interval over documents (linearised)." in page and "bootstrap" not in page
    assert heads.count("Comparison · toy") == 1 and heads.count("Comparison · toy-reversed") == 1
    assert sum(h.startswith("Temperature sweep · ") for h in heads) == 6
    assert sum(h.startswith("KL · SmolLM2-135M-int8-candidate against HuggingFaceTB") for h in heads) == 2
    assert heads[-1] == "Plots" and page.count("<h3>Calibration</h3>") == 6
    # every metric value with its interval underneath, from results.json
    r = res["results"][0]
    lo, hi = r["intervals"]["bits_per_byte"]
    assert f"{r['metrics']['bits_per_byte']:.4f}<br><span class=\"ci\">{lo:.4f}–{hi:.4f}</span>" in page
    b = r["temperature"]["best"]
    if b["method"] == "interpolated":  # an interpolated best T is headlined by its certain interval
        assert f"Best T in {outward(*b['temperature_interval'])} (certain, by convexity" in page
        assert f"estimate {b['temperature']:.4f} (quintic Hermite, not a bound)" in page
        assert f"Minimum NLL in {outward(*b['nll_bits_per_token_interval'], decimals=4)} bits/token" in page
    elif b["method"] == "beyond":  # no number: the label, and the lowest measured NLL
        assert b["temperature"] is None and "Best T: n/a (beyond T = " in page
        assert f"Lowest measured NLL {b['nll_bits_per_token']:.4f} bits/token" in page
    else:
        assert f"Best T = {b['temperature']:.4f}" in page
    kl = next(x for x in res["results"] if x.get("kl"))["kl"]
    assert f"{100 * kl['same_top1']:.3f}% ± {100 * kl['same_top1_se']:.3f}%" in page
    # plots (3), comparison charts (2) and context-length plots (2) embedded; every wide table in its own scroll box
    assert page.count("src=\"data:image/png;base64,iVBORw0KGgo") == 7
    assert heads.count("NLL by context length · toy") == 1 and heads.count("Compression baselines") == 1
    assert page.count("<div class=\"scroll\"><table>") == page.count("<table>")


def test_extra_sections_hook_and_escaping(run):
    res = json.loads((run / "results.json").read_text())
    res["run_name"] = "<b>run</b>"
    page = report_html(res, extra_sections=[("Per-group bits/byte", "<table id='groups'><tr><td>1</td></tr></table>")])
    extra = "<section><h2>Per-group bits/byte</h2>\n<table id='groups'><tr><td>1</td></tr></table>\n</section>"
    assert page.rindex("<h2>KL · ") < page.index(extra) and page.rstrip().endswith(extra + "</body>\n</html>")
    assert "<title>lm_eval_it · &lt;b&gt;run&lt;/b&gt;</title>" in page


def test_comparison_page(run):
    page = (run / "comparison.html").read_text()
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["toy", "toy-reversed"]
    assert page.count("data:image/png;base64,") == 2 and "† The tokenizers differ" in page


def test_report_headers_show_the_prefix_that_ran(run):
    res = json.loads((run / "results.json").read_text())
    assert res["config"]["eval"]["prefix"] == "auto"
    assert {r["eval"]["prefix"] for r in res["results"]} == {"bos:<s>"}
    summary_head = (run / "summary.md").read_text().splitlines()[2]
    assert "prefix `bos:<s>` (configured: auto)" in summary_head and "prefix auto" not in summary_head
    meta = re.search(r'<p class="meta">(.*?)</p>', (run / "report.html").read_text(), re.S).group(1)
    assert "prefix bos:&lt;s&gt; (configured: auto)" in meta and "prefix auto" not in meta


# ----------------------------------------------------------------------------- headless chromium

@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("name", ["report.html", "comparison.html"])
def test_nothing_overflows_in_chromium(run, tmp_path, name, width):
    exe = chromium()
    page = (run / name).read_text()
    probe = tmp_path / name
    probe.write_text(page.replace("</body>", FIT_CHECK + "</body>"))
    dom = browse(exe, tmp_path, probe, width, "--dump-dom")
    fit = json.loads(re.search(r'<pre id="fit">(.*?)</pre>', dom, re.S).group(1).replace("&quot;", '"'))
    assert fit["innerWidth"] == width
    assert fit["scrollWidth"] <= width and fit["overflowing"] == [], fit
    assert fit["images"] and all(0 < w <= width for w in fit["images"])
    if name == "comparison.html" and width == 1280:  # the main and detail tables fit without scrolling sideways
        assert len(fit["scrolled"]) == 2 * 4 and fit["scrolled"] == [0] * 8, fit
    shots = os.environ.get("LM_EVAL_IT_SCREENSHOTS")  # set it to keep a screenshot of each page and width
    if shots:
        os.makedirs(shots, exist_ok=True)
        browse(exe, tmp_path, run / name, width, f"--screenshot={os.path.join(shots, f'{name}-{width}.png')}")
