"""``--data``: a missing file with any suffix the readers know (config.schema.FORMAT_BY_SUFFIX) is "does not
exist", not a hub dataset lookup; a hub id still reads as one."""

import pytest

from lm_eval_it.config.schema import FORMAT_BY_SUFFIX
from lm_eval_it.config.shorthands import _data_entry
from lm_eval_it.errors import UserError


@pytest.mark.parametrize("suffix", sorted(FORMAT_BY_SUFFIX) + [".jsonl.gz", ".gz"])
def test_a_missing_file_with_a_known_suffix_is_said_to_be_missing(tmp_path, monkeypatch, suffix):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"--data: file 'notes{suffix}' does not exist"):
        _data_entry(f"notes{suffix}")


def test_a_hub_id_and_a_builtin_name_are_not_files():
    assert _data_entry("Salesforce/wikitext") == {"hub": "Salesforce/wikitext"}
    assert _data_entry("pydoc_topics") == {"builtin": "pydoc_topics"}
