"""The config split: the ``eval`` section in config/eval.py, the strict base, the face's names, dataset defaults."""

import pytest
from pydantic import ValidationError

import lm_eval_it.config as config
from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.config.reference import config_reference_md, field_rows
from lm_eval_it.config.schema import DatasetConfig, ModelConfig, OutputConfig, RunConfig
from lm_eval_it.config.strict import Strict


def test_config_face_exports_the_same_names_as_before_the_split():
    assert sorted(config.__all__) == ["DatasetConfig", "EvalConfig", "ModelConfig", "OutputConfig", "RunConfig",
                                      "apply_override", "finish_config", "load_config", "load_raw", "parse_config",
                                      "read_raw"]
    assert config.EvalConfig is EvalConfig
    assert RunConfig.model_fields["eval"].annotation is EvalConfig


@pytest.mark.parametrize("section", [ModelConfig, DatasetConfig, EvalConfig, OutputConfig, RunConfig])
def test_every_section_is_strict_about_unknown_keys(section):
    assert issubclass(section, Strict)
    assert section.model_config["extra"] == "forbid" and section.model_config["validate_default"] is True


def test_eval_stride_defaults_to_the_window_and_may_not_exceed_it():
    assert EvalConfig(window=300).stride == 300
    assert EvalConfig(window=300, stride=100).stride == 100
    with pytest.raises(ValidationError, match="stride 301 is larger than window 300"):
        EvalConfig(window=300, stride=301)


def test_eval_sweep_is_sorted_deduplicated_and_always_holds_t_1():
    assert EvalConfig(temperatures=[2.0, 0.5, 2.0]).temperatures == [0.5, 1.0, 2.0]
    assert EvalConfig().temperatures == []
    with pytest.raises(ValidationError, match=r"expected temperatures > 0, got \[0.0, inf\]"):
        EvalConfig(temperatures=[0.0, 1.5, float("inf")])


def test_reference_page_keeps_the_eval_section_from_its_own_module():
    md = config_reference_md()
    assert "## `eval`\n\none section. How windows are cut and scored." in md
    assert field_rows(EvalConfig)[1] == ("stride", "int | None ≥ 1", "null", EvalConfig.model_fields["stride"].description)
    assert md.index("## `datasets`") < md.index("## `eval`") < md.index("## `output`")


@pytest.mark.parametrize("given, name", [
    ({"hub": "Salesforce/wikitext", "config": "wikitext-2-raw-v1"}, "wikitext/wikitext-2-raw-v1/test"),
    ({"hub": "org/set", "split": "validation"}, "set/validation"),
    ({"path": "/data/notes.jsonl"}, "notes"),
    ({"path": "/data/essays/*.txt"}, "essays"),
    ({"builtin": "pydoc_topics"}, "pydoc_topics"),
    ({"path": "/data/notes.jsonl", "name": "mine"}, "mine"),
])
def test_dataset_default_names(given, name):
    assert DatasetConfig(**given).name == name


@pytest.mark.parametrize("given, message", [
    ({"path": "/data/x.jsonl", "streaming": True}, "streaming: true reads a hub dataset"),
    ({"hub": "org/set", "streaming": True, "doc_regex": "^="}, "cannot be used with streaming: true"),
    ({"path": "/data/*.jsonl"}, "a glob in path: reads text files"),
    ({"path": "/data/x.txt", "group_by": "source"}, "group_by 'source' cannot be used here: a text file has no fields"),
    ({"path": "/data/x.weird"}, "cannot tell the format of '/data/x.weird' from its suffix; set format: text"),
])
def test_dataset_combinations_that_cannot_go_together(given, message):
    with pytest.raises(ValidationError, match=message.replace("*", r"\*")):
        DatasetConfig(**given)
