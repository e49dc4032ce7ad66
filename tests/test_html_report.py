"""report.html and comparison.html: rendered from the results dict by jinja2 templates, self-contained."""

import json
import re

import pytest
import torch
import yaml

from lm_eval_it.cli import main
from lm_eval_it.report import report_html

TEXTS = ["The quick brown fox jumps over the lazy dog.  Twice the spaces here.",
         "A second document\r\nwith CRLF line endings and numbers 3.14159.",
         "def f(x):\n    return x * 2   # indented code is hard for word-level tokenizers\n",
         "Lists, tuples and dictionaries are built-in types in Python; sets too. " * 3]
MODELS = ["HuggingFaceTB-SmolLM2-135M-Instruct-bytes", "SmolLM2-135M-int8-candidate", "word-level-baseline"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, word_model_dir):
    """One end-to-end run: three models (one a KL candidate of another), a 9-temperature sweep, two datasets."""
    from transformers import AutoModelForCausalLM

    from conftest import byte_level_tokenizer

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
    cfg = {"models": [{"name": MODELS[0], "path": str(tiny_model_dir)},
                      {"name": MODELS[1], "path": str(nudged), "compare_to": MODELS[0]},
                      {"name": MODELS[2], "path": str(word_model_dir)}],
           "datasets": [{"name": n, "path": str(tmp / f"{n}.jsonl")} for n in ("toy", "toy-reversed")],
           "eval": {"window": 32, "stride": 16, "batch_size": 4, "device": "cpu",
                    "temperatures": [0.5, 0.6, 0.7, 0.8, 0.9, 1.1, 1.3, 1.6]},
           "output": {"dir": str(tmp / "results"), "run_name": "html", "baseline": MODELS[0]}}
    (tmp / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp / "cfg.yaml"), "--quiet"]) == 0
    (folder,) = (tmp / "results" / "html").iterdir()
    return folder


def test_report_sections_render_from_results(run):
    page = (run / "report.html").read_text()
    res = json.loads((run / "results.json").read_text())
    assert page.startswith("<!doctype html>") and "<link" not in page and "<script" not in page
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    assert heads[0] == "Metrics"
    assert heads.count("Comparison · toy") == 1 and heads.count("Comparison · toy-reversed") == 1
    assert sum(h.startswith("Temperature sweep · ") for h in heads) == 6
    assert sum(h.startswith("KL · SmolLM2-135M-int8-candidate against HuggingFaceTB") for h in heads) == 2
    assert heads[-1] == "Plots" and page.count("<h3>Calibration</h3>") == 6
    # every metric value with its interval underneath, from results.json
    r = res["results"][0]
    lo, hi = r["intervals"]["bits_per_byte"]
    assert f"{r['metrics']['bits_per_byte']:.4f}<br><span class=\"ci\">{lo:.4f}–{hi:.4f}</span>" in page
    b = r["temperature"]["best"]
    assert f"Best T = <b>{b['temperature']:.4f}</b>" in page
    kl = next(x for x in res["results"] if x.get("kl"))["kl"]
    assert f"{100 * kl['same_top1']:.3f}% ± {100 * kl['same_top1_se']:.3f}%" in page
    # plots (3) and comparison charts (2) embedded; every wide table in its own scroll box
    assert page.count("src=\"data:image/png;base64,iVBORw0KGgo") == 5
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
