"""One end-to-end run with the token-level views, shared by the views' page tests: two tiny models with different
tokenizers (byte-level BPE, the baseline, and word-level), a temperature sweep (entropy at T = 1), documents that
need escaping, multi-byte characters split across tokens, and documents longer than the drawn part."""

from __future__ import annotations

from pathlib import Path

from conftest import corpus, run_path, write_config

ESCAPES = ("Escapes: <script>alert('x')</script> & \"double\" 'single' &amp;\n\ttabbed\r\nCRLF, then a long "
           "unbroken word: " + "x" * 300 + "\nthe end.")
UNICODE = "Unicode: naïve café — 日本語のテキスト 🙂 Ünïcödé, ends here.\n  indented line\n"
TEXTS = [ESCAPES, UNICODE] + [t for t in corpus()[:40] if t.strip()][:8]
NAMED = [0, 1]  # output.views.documents: always drawn
MODELS = ("bytes", "words")
_RUNS: dict = {}


def views_run(tmp_path_factory, tiny_model_dir, word_model_dir, **output):
    """The run's folder (run once per session for each ``output``)."""
    key = repr(sorted(output.items()))
    if key not in _RUNS:
        tmp = tmp_path_factory.mktemp("views-run")
        models = [{"name": MODELS[0], "path": str(tiny_model_dir)}, {"name": MODELS[1], "path": str(word_model_dir)}]
        views = {"documents": NAMED, **output.pop("views", {})}
        _RUNS[key] = run_path(write_config(tmp, models, TEXTS, name="views",
                                           eval={"window": 64, "stride": 32, "temperatures": [0.7]},
                                           output={"baseline": MODELS[0], "views": views, **output})).folder
    return Path(_RUNS[key])
