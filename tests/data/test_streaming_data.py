"""Streaming hub datasets (issue #12): re-iterable texts, limit via islice, source fingerprint, no len()."""

import datasets
import pytest

from lm_eval_it.config import DatasetConfig
from lm_eval_it.data.documents import Documents, fingerprint_texts, load_documents
from lm_eval_it.errors import UserError


def fake_stream(monkeypatch, rows: dict):
    """datasets.load_dataset → an IterableDataset over ``rows`` whose every pass is counted."""
    calls, passes, pulled = [], [0], [0]

    def gen():
        passes[0] += 1
        for i in range(len(next(iter(rows.values())))):
            pulled[0] += 1
            yield {k: v[i] for k, v in rows.items()}

    def load_dataset(path, name=None, **kw):
        calls.append((path, name, kw.get("split"), kw.get("revision"), kw.get("streaming", False)))
        if kw.get("streaming"):
            return datasets.IterableDataset.from_generator(gen)
        return datasets.Dataset.from_dict(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls, passes, pulled


def test_streamed_texts_reiterate_by_reopening_and_honour_limit(monkeypatch):
    calls, passes, pulled = fake_stream(monkeypatch, {"text": [f"doc {i}" for i in range(1000)], "n": list(range(1000))})
    docs = load_documents(DatasetConfig(hub="org/big", config="en", split="validation", streaming=True, limit=5))
    assert calls == [("org/big", "en", "validation", None, True)]
    assert not isinstance(docs.texts, list) and docs.streaming and passes[0] == 0 and pulled[0] == 0
    assert list(docs.texts) == ["doc 0", "doc 1", "doc 2", "doc 3", "doc 4"]
    assert passes[0] == 1 and pulled[0] == 5  # the rest of the corpus is never read
    assert list(docs.texts) == ["doc 0", "doc 1", "doc 2", "doc 3", "doc 4"] and passes[0] == 2
    assert len(calls) == 1
    with pytest.raises(TypeError, match="no len"):
        len(docs.texts)
    assert docs.skipped_empty is None and docs.texts.counted == 5 and docs.texts.skipped_empty == 0


def test_streaming_matches_the_in_memory_load(monkeypatch):
    rows = {"text": ["alpha", "", "beta\r\n", "", "gamma"]}
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **kw: datasets.Dataset.from_dict(rows).to_iterable_dataset()
                        if kw.get("streaming") else datasets.Dataset.from_dict(rows))
    listed = load_documents(DatasetConfig(hub="org/x", split="test"))
    streamed = load_documents(DatasetConfig(hub="org/x", split="test", streaming=True))
    assert isinstance(listed.texts, list) and listed.texts == ["alpha", "beta\r\n", "gamma"]
    assert list(streamed.texts) == listed.texts and streamed.texts.skipped_empty == 2 == listed.skipped_empty
    joined = load_documents(DatasetConfig(hub="org/x", split="test", streaming=True, mode="stream", separator="|"))
    assert list(joined.texts) == ["alpha||beta\r\n||gamma"]


def test_fingerprint_is_of_the_source_description(monkeypatch):
    fake_stream(monkeypatch, {"text": ["a", "b", "c"]})

    def fp(**kw):
        return load_documents(DatasetConfig(**{"hub": "org/x", "split": "test", "streaming": True, **kw})).fingerprint

    base = fp()
    assert base.startswith("source-sha256:") and base == fp()
    assert len({base, fp(limit=2), fp(split="validation"), fp(config="en"), fp(revision="abc123"),
                fp(text_field="body")}) == 6
    docs = load_documents(DatasetConfig(hub="org/x", split="test", streaming=True))
    assert docs.source == {"hub": "org/x", "config": None, "split": "test", "revision": None, "streaming": True,
                           "limit": None, "text_field": "text", "mode": "documents"}
    assert docs.fingerprint != fingerprint_texts(["a", "b", "c"])


def test_non_streaming_keeps_a_list_and_the_text_fingerprint(monkeypatch):
    fake_stream(monkeypatch, {"text": ["a", "b"]})
    docs = load_documents(DatasetConfig(hub="org/x", split="test"))
    assert docs.texts == ["a", "b"] and not docs.streaming and docs.fingerprint == fingerprint_texts(["a", "b"])
    assert Documents(name="n", texts=["a", "b"], source={}).fingerprint == docs.fingerprint


def test_c4_validation_streams_its_first_1000(monkeypatch):
    calls, passes, pulled = fake_stream(monkeypatch, {"text": [f"c4 {i}" for i in range(1500)]})
    docs = load_documents(DatasetConfig(builtin="c4-validation"))
    assert calls == [("allenai/c4", "en", "validation", None, True)]
    texts = list(docs.texts)
    assert len(texts) == 1000 and texts[-1] == "c4 999" and pulled[0] == 1000
    assert docs.source["builtin"] == "c4-validation" and docs.source["limit"] == 1000


def test_stream_errors_are_one_line(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **kw: datasets.Dataset.from_dict({"body": ["x"]}).to_iterable_dataset())
    with pytest.raises(UserError, match=r"unknown text_field 'text'.*available fields: body"):
        load_documents(DatasetConfig(hub="org/x", streaming=True))
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **kw: datasets.Dataset.from_dict({"text": [1, 2]}).to_iterable_dataset())
    with pytest.raises(UserError, match=r"row 1 field 'text' is int, expected text"):
        list(load_documents(DatasetConfig(hub="org/x", streaming=True)).texts)
    with pytest.raises(ValueError, match="streaming: true reads a hub dataset"):
        DatasetConfig(path="x.jsonl", streaming=True)
    with pytest.raises(ValueError, match="cannot be used with streaming"):
        DatasetConfig(hub="org/x", streaming=True, doc_regex="^=")
    assert DatasetConfig(builtin="c4-validation", path="c4.json.gz").streaming is False


@pytest.mark.parametrize("streaming", [False, True])
def test_a_hub_row_with_null_text_is_an_error_naming_the_row(monkeypatch, streaming):
    rows = {"text": ["alpha", "", "beta", None]}
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **kw: datasets.Dataset.from_dict(rows).to_iterable_dataset()
                        if kw.get("streaming") else datasets.Dataset.from_dict(rows))
    with pytest.raises(UserError, match=r"row 4 has no 'text' \(it is null\)"):
        list(load_documents(DatasetConfig(hub="org/x", split="test", streaming=streaming)).texts)
