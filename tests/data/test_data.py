"""Document loading from local files, kept byte for byte."""

import json

import pytest
from conftest import WIKITEXT

from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import fingerprint_texts, load_documents, split_documents
from lm_eval_it.errors import UserError

WIKI_REGEX = r"^ = [^=].* = \r?$"


def test_builtin_pydoc_topics():
    docs = load_documents(DatasetConfig(builtin="pydoc_topics"))
    assert len(docs.texts) == 79
    assert 400_000 < sum(len(t.encode()) for t in docs.texts) < 600_000
    assert load_documents(DatasetConfig(builtin="pydoc_topics", limit=12)).texts == docs.texts[:12]


def test_text_file_split_keeps_crlf_bytes(tmp_path):
    raw = " = A = \r\nline one\r\n\r\n = = Sub = = \r\nmore\n = B = \r\nend"
    (tmp_path / "w.txt").write_bytes(raw.encode())
    docs = load_documents(DatasetConfig(path=str(tmp_path / "w.txt"), doc_regex=WIKI_REGEX))
    assert docs.texts == [" = A = \r\nline one\r\n\r\n = = Sub = = \r\nmore\n", " = B = \r\nend"]
    assert "".join(docs.texts) == raw
    whole = load_documents(DatasetConfig(path=str(tmp_path / "w.txt")))
    assert whole.texts == [raw]


@pytest.mark.skipif(not WIKITEXT.is_file(), reason="shared WikiText-2 not present")
def test_wikitext_splits_into_62_articles_byte_for_byte():
    docs = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=WIKI_REGEX))
    assert len(docs.texts) == 62
    assert "".join(docs.texts).encode() == WIKITEXT.read_bytes()
    assert sum(len(t.encode()) for t in docs.texts) == 1_290_547


def test_jsonl_csv_parquet(tmp_path):
    rows = [{"text": "hello world", "id": 1}, {"text": "", "id": 2}, {"text": "second\r\ndoc", "id": 3}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    docs = load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl")))
    assert docs.texts == ["hello world", "second\r\ndoc"] and docs.skipped_empty == 1
    import pandas as pd

    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    assert load_documents(DatasetConfig(path=str(tmp_path / "d.parquet"))).texts == docs.texts
    pd.DataFrame([{"body": "a,b"}, {"body": "c"}]).to_csv(tmp_path / "d.csv", index=False)
    assert load_documents(DatasetConfig(path=str(tmp_path / "d.csv"), text_field="body")).texts == ["a,b", "c"]


def test_stream_mode_joins_rows(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\n{"text": ""}\n{"text": "b"}\n')
    docs = load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl"), mode="stream", separator="\n\n"))
    assert docs.texts == ["a\n\n\n\nb"]


def test_unknown_field_missing_file_bad_utf8_empty(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"content": "a"}\n')
    with pytest.raises(UserError, match=r"unknown text_field 'text'.*available fields: content"):
        load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl")))
    with pytest.raises(UserError, match=r"did you mean 'content'"):
        load_documents(DatasetConfig(path=str(tmp_path / "d.jsonl"), text_field="contnt"))
    with pytest.raises(UserError, match="does not exist"):
        load_documents(DatasetConfig(path=str(tmp_path / "nope.txt")))
    (tmp_path / "bad.txt").write_bytes(b"abc\xffdef")
    with pytest.raises(UserError, match="byte offset 3.*encoding_errors: replace"):
        load_documents(DatasetConfig(path=str(tmp_path / "bad.txt")))
    assert load_documents(DatasetConfig(path=str(tmp_path / "bad.txt"), encoding_errors="replace")).texts == ["abc\ufffddef"]
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(UserError, match="no non-empty documents"):
        load_documents(DatasetConfig(path=str(tmp_path / "empty.txt")))


def test_fingerprint_depends_on_boundaries():
    assert fingerprint_texts(["ab", "c"]) != fingerprint_texts(["a", "bc"])
    assert fingerprint_texts(["ab"]) == fingerprint_texts(["ab"])
    assert split_documents("x", None) == ["x"]


@pytest.mark.parametrize("row,why", [({"title": "no text key"}, "the key is missing"), ({"text": None}, "it is null")])
def test_a_jsonl_row_without_text_is_an_error_naming_its_line(tmp_path, row, why):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a"}) + "\n\n" + json.dumps(row) + "\n" + json.dumps({"text": "b"}) + "\n")
    with pytest.raises(UserError) as e:
        load_documents(DatasetConfig(path=str(path)))
    assert str(e.value) == (f"{path}: line 3 has no 'text' ({why}); give it a text, or \"text\": \"\" to skip it "
                            f"as an empty document")


def test_a_null_text_in_parquet_or_csv_rows_is_an_error_naming_the_row(tmp_path):
    import pandas as pd

    rows = [{"text": "a"}, {"text": "b"}, {"text": None}]
    pd.DataFrame(rows).to_parquet(tmp_path / "d.parquet")
    with pytest.raises(UserError, match=r"d.parquet: row 3 has no 'text' \(it is null\)"):
        load_documents(DatasetConfig(path=str(tmp_path / "d.parquet")))
