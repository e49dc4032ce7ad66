"""Report headers: the window, stride and prefix that ran, the configured ones in brackets when they differ."""

import json
import re

from lm_eval_it.cli import main
from lm_eval_it.report.compare.tables import weights_text
from lm_eval_it.report.headers import protocol_text, ran_text


def _res(config: dict, ran: list[dict]) -> dict:
    return {"config": {"eval": config}, "results": [{"model": f"m{i}", "dataset": "d", "eval": e}
                                                      for i, e in enumerate(ran)]}


def test_ran_text_names_what_ran_and_the_configured_value():
    same = _res({"window": 512, "stride": 256, "window_unit": "tokens"}, [{"window": 512, "stride": 256}])
    assert (ran_text(same, "window"), ran_text(same, "stride")) == ("512", "256")
    in_bytes = _res({"window": 2048, "stride": 2048, "window_unit": "bytes"},
                    [{"window": 700, "stride": 700}, {"window": 512, "stride": 512}])
    assert ran_text(in_bytes, "window") == "700 (m0), 512 (m1) (configured: 2048 bytes)"
    assert ran_text(in_bytes, "window", code=True).startswith("`700` (m0)")


def test_report_headers_show_the_window_that_ran_when_clamped(tmp_path, tiny_model_dir):
    texts = ["The quick brown fox jumps over the lazy dog. " * 30, "Another document, a little shorter. " * 20]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert main(["run", "--model", str(tiny_model_dir), "--data", str(tmp_path / "d.jsonl"), "--window", "100000",
                 "--stride", "50000", "--out", str(tmp_path / "res"), "--name", "c", "--quiet"]) == 0
    (folder,) = (tmp_path / "res" / "c").iterdir()
    ev = json.loads((folder / "results.json").read_text())["results"][0]["eval"]
    assert (ev["window"], ev["stride"]) == (512, 256)          # clamped to the tiny model's 512 positions
    head = (folder / "summary.md").read_text().splitlines()[2]
    assert "window 512 (configured: 100000), stride 256 (configured: 50000)," in head
    meta = re.search(r'<p class="meta">(.*?)</p>', (folder / "report.html").read_text(), re.DOTALL).group(1)
    assert "window 512 (configured: 100000), stride 256 (configured: 50000)," in meta


def test_a_llama_perplexity_run_says_its_protocol_not_a_window_and_stride():
    res = {"config": {"eval": {"prefix": "auto", "window": 512, "stride": None}},
           "results": [{"model": m, "dataset": "d", "per_document": [{"bytes": 5}],
                        "eval": {"protocol": "llama-perplexity", "n_ctx": 512, "window": 512, "stride": 512,
                                 "prefix": "none"}} for m in ("a", "b")]}
    text = protocol_text(res)
    assert text.startswith("protocol llama-perplexity: n_ctx 512") and "stride" not in text
    res["results"][1]["eval"]["protocol"] = "strided"  # mixed: the window, stride and prefix of each
    assert protocol_text(res).startswith("window 512")


def test_the_comparison_names_a_backend_only_where_it_is_not_the_default():
    assert weights_text({"dtype": "float32", "backend": "hf", "gguf_file": "m.Q4_1.gguf"}) == "GGUF Q4_1 → float32"
    assert weights_text({"dtype": "gguf:Q4_1", "backend": "llama.cpp"}) == "gguf:Q4_1 · llama.cpp"
    assert weights_text({"dtype": "bfloat16"}) == "bfloat16"
