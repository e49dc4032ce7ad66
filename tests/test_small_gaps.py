"""Small gaps a new user hits: top-level typos, dtype aliases, repeated warnings, library warnings."""

import logging
import warnings

import pytest

from lm_eval_it.cli import _setup_logging, main
from lm_eval_it.config import parse_config
from lm_eval_it.errors import UserError


def test_top_level_typo_is_named_before_the_missing_key():
    with pytest.raises(UserError) as e:
        parse_config({"models": [{"path": "org/m"}], "dataset": [{"builtin": "pydoc_topics"}]})
    assert str(e.value).startswith("config: dataset: unknown key (did you mean 'datasets'?)")


@pytest.mark.parametrize("alias,name", [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32"),
                                        ("bfloat16", "bfloat16")])
def test_dtype_aliases(alias, name):
    cfg = parse_config({"models": [{"path": "org/m", "dtype": alias}], "datasets": [{"builtin": "pydoc_topics"}]})
    assert cfg.models[0].dtype == name


def test_identical_warnings_print_once_and_library_warnings_are_hidden(capsys):
    root = logging.getLogger()
    old_handlers, old_filters = root.handlers[:], warnings.filters[:]
    root.handlers = [logging.StreamHandler()]
    try:
        _setup_logging()
        log = logging.getLogger("lm_eval_it.test")
        for _ in range(3):
            log.warning("window clamped to %d", 512)
        log.warning("window clamped to %d", 256)
        with warnings.catch_warnings(record=True) as caught:
            warnings.filters[:] = [f for f in warnings.filters if f[0] == "ignore"]  # keep ours, drop pytest's
            warnings.warn_explicit("old API", FutureWarning, "x.py", 1, module="transformers.utils")
            warnings.warn_explicit("ours", UserWarning, "y.py", 1, module="lm_eval_it.run.runner")
        assert [str(w.message) for w in caught] == ["ours"]
    finally:
        root.handlers, warnings.filters[:] = old_handlers, old_filters
    err = capsys.readouterr().err
    assert err.count("window clamped to 512") == 1 and err.count("window clamped to 256") == 1


def test_dtype_alias_through_the_cli_override(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr("lm_eval_it.run.runner.run", lambda cfg, raw, **kw: seen.setdefault("cfg", cfg))
    assert main(["run", "--model", "org/m", "--data", "pydoc_topics", "models.0.dtype=bf16"]) == 0
    assert seen["cfg"].models[0].dtype == "bfloat16"
