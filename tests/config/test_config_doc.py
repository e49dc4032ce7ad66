"""The generated config reference lists every key with its type, default and description."""

from typing import Literal

from pydantic import BaseModel, Field

from lm_eval_it.config import DatasetConfig, EvalConfig, ModelConfig, OutputConfig
from lm_eval_it.config.reference import config_reference_md, field_rows, undocumented


def test_config_reference_has_a_row_for_every_key_of_every_section():
    page = config_reference_md()
    for section, model in (("models", ModelConfig), ("datasets", DatasetConfig), ("eval", EvalConfig),
                           ("output", OutputConfig)):
        body = page.split(f"## `{section}`")[1].split("\n## ")[0]
        rows = [line for line in body.splitlines() if line.startswith("| `")]
        assert [r.split("`")[1] for r in rows] == list(model.model_fields)


def test_config_reference_shows_types_bounds_and_yaml_defaults():
    page = config_reference_md()
    assert "| `window` | `int ≥ 2` | `1024` |" in page
    assert "| `min_k` | `float > 0, ≤ 100` | `20.0` |" in page
    assert "| `compressors` | `list['gzip' | 'bz2' | 'xz' | 'zstd']` | `[\"gzip\", \"bz2\", \"xz\", \"zstd\"]` |" in page
    assert "| `trust_remote_code` | `bool` | `false` |" in page
    assert "| `path` | `str length ≥ 1` | `required` |" in page


def test_every_config_key_has_a_description():
    assert undocumented() == []


def test_field_rows_reports_a_missing_description_as_empty():
    class Demo(BaseModel):
        kind: Literal["a", "b"] | None = Field(default=None, description="which one")
        count: int = 3

    assert field_rows(Demo) == [("kind", "'a' | 'b' | None", "null", "which one"), ("count", "int", "3", "")]
