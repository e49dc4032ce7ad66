"""Every YAML example in the README and the docs site is a valid config (a section alone gets the rest)."""

import re
from pathlib import Path

import pytest
import yaml

from lm_eval_it.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCKS = [(p.relative_to(ROOT).as_posix(), i, b) for p in PAGES
          for i, b in enumerate(re.findall(r"```yaml\n(.*?)```", p.read_text(encoding="utf-8"), re.S))]


def test_the_readme_and_the_docs_have_yaml_examples():
    pages = {name for name, _, _ in BLOCKS}
    assert {"README.md", "docs/datasets.md", "docs/models.md"} <= pages


@pytest.mark.parametrize("page,index,block", BLOCKS, ids=[f"{n}#{i}" for n, i, _ in BLOCKS])
def test_yaml_example_is_a_valid_config(page, index, block):
    raw = {"models": [{"path": "org/model"}], "datasets": [{"builtin": "pydoc_topics"}], **yaml.safe_load(block)}
    cfg = parse_config(raw, source=f"{page} example {index}")
    assert cfg.models and cfg.datasets
