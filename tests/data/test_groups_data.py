"""Per-domain groups (issue #14): group_by on rows, glob text paths grouped by file stem."""

import json

import datasets
import pytest

from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import Documents, load_documents
from lm_eval_it.errors import UserError

ROWS = [{"text": "law one", "domain": "legal"}, {"text": "", "domain": "code"},
        {"text": "def f(): pass", "domain": "code"}, {"text": "court", "domain": "legal"},
        {"text": "3 + 4", "domain": 7}]


def write_rows(tmp_path, rows=ROWS):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import pandas as pd

    pd.DataFrame(rows).astype({"domain": str}).to_parquet(tmp_path / "d.parquet")
    pd.DataFrame(rows).to_csv(tmp_path / "d.csv", index=False)


@pytest.mark.parametrize("suffix", ["jsonl", "parquet", "csv"])
def test_group_by_on_rows_aligned_after_empty_skipping_and_limit(tmp_path, suffix):
    write_rows(tmp_path)
    docs = load_documents(DatasetConfig(path=str(tmp_path / f"d.{suffix}"), group_by="domain"))
    assert docs.texts == ["law one", "def f(): pass", "court", "3 + 4"]
    assert docs.groups == ["legal", "code", "legal", "7"] and docs.skipped_empty == 1
    limited = load_documents(DatasetConfig(path=str(tmp_path / f"d.{suffix}"), group_by="domain", limit=3))
    assert limited.texts == ["law one", "def f(): pass"] and limited.groups == ["legal", "code"]
    assert load_documents(DatasetConfig(path=str(tmp_path / f"d.{suffix}"))).groups is None


def test_group_by_on_hub_rows(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **kw: datasets.Dataset.from_dict(
        {"text": ["a", "b", "c"], "source": ["web", "books", "web"]}))
    docs = load_documents(DatasetConfig(hub="org/mix", group_by="source"))
    assert docs.texts == ["a", "b", "c"] and docs.groups == ["web", "books", "web"]
    assert docs.source["group_by"] == "source"


def test_fingerprint_changes_with_the_groups(tmp_path):
    write_rows(tmp_path)
    plain = load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl")))
    grouped = load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl"), group_by="domain"))
    rows = [dict(r, domain="other" if r["domain"] == "code" else r["domain"]) for r in ROWS]
    (tmp_path / "e").mkdir()
    write_rows(tmp_path / "e", rows)
    regrouped = load_documents(DatasetConfig(path=str(tmp_path / "e" / "d.jsonl"), group_by="domain"))
    assert plain.texts == grouped.texts == regrouped.texts
    assert len({plain.fingerprint, grouped.fingerprint, regrouped.fingerprint}) == 3
    assert Documents("x", ["a"], {}).fingerprint == Documents("x", ["a"], {}, groups=None).fingerprint


def test_missing_group_value_names_the_row(tmp_path):
    rows = [{"text": "a", "domain": "x"}, {"text": "b"}, {"text": "c", "domain": None}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"d.jsonl: line 2 has no value for group_by field 'domain'"):
        load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl"), group_by="domain"))
    with pytest.raises(UserError, match=r"unknown group_by field 'domian' \(did you mean 'domain'\?\)"):
        load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl"), group_by="domian"))


def test_text_glob_one_group_per_file_in_sorted_order(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "web.txt").write_bytes(b" = A = \r\nweb one\r\n = B = \r\nweb two\r\n")
    (data / "books.txt").write_bytes(b"a whole book\n")
    (data / "notes.md").write_text("not matched")
    (data / "empty.txt").write_text("")
    docs = load_documents(DatasetConfig(path=str(data / "*.txt"), doc_regex=r"^ = [^=].* = \r?$"))
    assert docs.name == "data"
    assert docs.texts == ["a whole book\n", " = A = \r\nweb one\r\n", " = B = \r\nweb two\r\n"]
    assert docs.groups == ["books", "web", "web"] and docs.skipped_empty == 1
    assert docs.source["files"] == [str(data / f) for f in ("books.txt", "empty.txt", "web.txt")]
    joined = load_documents(DatasetConfig(path=str(data / "*.txt"), mode="stream", separator=""))
    assert joined.groups is None and joined.texts == ["a whole book\n = A = \r\nweb one\r\n = B = \r\nweb two\r\n"]


def test_glob_and_group_by_misuse_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no file matches"):
        load_documents(DatasetConfig(path=str(tmp_path / "*.txt")))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_text("1")
    (tmp_path / "b" / "x.txt").write_text("2")
    with pytest.raises(UserError, match="would both be group 'x'"):
        load_documents(DatasetConfig(path=str(tmp_path / "*" / "x.txt")))
    with pytest.raises(ValueError, match="a glob in path: reads text files"):
        DatasetConfig(path="data/*.jsonl")
    for kw, why in [({"path": "d.jsonl", "mode": "stream"}, "mode: stream makes one document"),
                    ({"path": "d.txt"}, "a text file has no fields"),
                    ({"hub": "org/x", "streaming": True}, "streamed documents cannot carry"),
                    ({"builtin": "pydoc_topics"}, "pydoc_topics has no fields")]:
        with pytest.raises(ValueError, match=why):
            DatasetConfig(group_by="domain", **kw)
