"""Config validation: every YAML in configs/ loads; bad configs give one clear line."""

from pathlib import Path

import pytest

from lm_eval_it.config import apply_override, load_config, parse_config
from lm_eval_it.errors import UserError

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
BASE = {"models": [{"path": "org/model"}], "datasets": [{"builtin": "pydoc_topics"}]}


def with_(**sections):
    raw = {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in BASE.items()}
    raw.update(sections)
    return raw


def error_of(raw) -> str:
    with pytest.raises(UserError) as e:
        parse_config(raw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg, raw = load_config(path)
    assert cfg.models and cfg.datasets
    assert 1 <= cfg.eval.stride <= cfg.eval.window
    assert cfg.output.run_name


def test_there_are_configs():
    assert {p.name for p in CONFIGS} >= {"quickstart.yaml", "wikitext2.yaml"}


def test_defaults():
    cfg = parse_config(BASE)
    assert (cfg.eval.window, cfg.eval.stride, cfg.eval.prefix, cfg.eval.batch_size, cfg.eval.device) == (
        1024, 1024, "auto", "auto", "auto")
    assert cfg.models[0].trust_remote_code is False and cfg.models[0].name == "model"
    assert cfg.output.dir == "results"


def test_unknown_key_suggests_the_close_one():
    msg = error_of(with_(eval={"strid": 4}))
    assert msg.startswith("config: eval.strid: unknown key (did you mean 'stride'?)")
    msg = error_of(with_(models=[{"path": "x", "dtyp": "float32"}]))
    assert "models.0.dtyp" in msg and "did you mean 'dtype'" in msg
    assert "did you mean 'text_field'" in error_of(with_(datasets=[{"builtin": "pydoc_topics", "txt_field": "x"}]))


def test_wrong_values_name_key_value_and_expectation():
    assert error_of(with_(models=[{"path": "x", "dtype": "fp8"}])) == (
        "config: models.0.dtype: got 'fp8', expected 'auto', 'float32', 'bfloat16' or 'float16'")
    msg = error_of(with_(eval={"window": "big"}))
    assert "eval.window" in msg and "'big'" in msg and "integer" in msg
    assert "eval.window: got 1" in error_of(with_(eval={"window": 1}))
    assert "positive integer or 'auto'" in error_of(with_(eval={"batch_size": 0}))
    assert "eval.device: got 'gpu'" in error_of(with_(eval={"device": "gpu"}))


def test_stride_larger_than_window():
    msg = error_of(with_(eval={"window": 8, "stride": 9}))
    assert "stride 9 is larger than window 8" in msg


def test_empty_lists_and_duplicates_and_sources():
    assert "models" in error_of(with_(models=[]))
    assert "duplicate models name(s) ['a']" in error_of(with_(models=[{"path": "a"}, {"path": "b/a"}]))
    assert "exactly one of 'builtin', 'hub' or 'path'" in error_of(with_(datasets=[{"hub": "a", "path": "b.txt"}]))
    assert "set format" in error_of(with_(datasets=[{"path": "data.xyz"}]))
    assert "models: required key is missing" in error_of({"datasets": BASE["datasets"]})


def test_overrides_with_dotted_paths_and_indices(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("models:\n  - path: a/b\ndatasets:\n  - builtin: pydoc_topics\n")
    cfg, _ = load_config(p, ["eval.stride=256", "eval.window=512", "models.0.dtype=bfloat16", "output.run_name=x"])
    assert (cfg.eval.stride, cfg.eval.window, cfg.models[0].dtype, cfg.output.run_name) == (256, 512, "bfloat16", "x")
    with pytest.raises(UserError, match="not an index of a list of 1"):
        load_config(p, ["models.3.dtype=float32"])
    with pytest.raises(UserError, match="expected key=value"):
        load_config(p, ["eval.stride"])
    raw = {"a": [1, 2]}
    apply_override(raw, "a.1=null")
    assert raw == {"a": [1, None]}


def test_yaml_syntax_error_names_the_line(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("models:\n  - path: a\n  datasets: [oops\n")
    with pytest.raises(UserError, match=r"YAML syntax error at line \d+"):
        load_config(p)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_yaml_is_read_with_the_safe_loader(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("models: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(UserError, match="YAML"):
        load_config(p)


def test_top_level_typo_is_named_before_the_missing_key():
    with pytest.raises(UserError) as e:
        parse_config({"models": [{"path": "org/m"}], "dataset": [{"builtin": "pydoc_topics"}]})
    assert str(e.value).startswith("config: dataset: unknown key (did you mean 'datasets'?)")


@pytest.mark.parametrize("alias,name", [("bf16", "bfloat16"), ("fp16", "float16"), ("fp32", "float32"),
                                        ("bfloat16", "bfloat16")])
def test_dtype_aliases(alias, name):
    cfg = parse_config({"models": [{"path": "org/m", "dtype": alias}], "datasets": [{"builtin": "pydoc_topics"}]})
    assert cfg.models[0].dtype == name
