"""Named benchmark datasets (issue #13): hub ids, shaping rules, local copies, offline errors."""

import gzip
import json
import time

import datasets
import pytest
from conftest import REPO, WIKITEXT

from lm_eval_it.config.load import load_config
from lm_eval_it.config.schema import BUILTIN_DATASETS, DatasetConfig
from lm_eval_it.data.documents import load_documents
from lm_eval_it.errors import UserError

needs_wikitext = pytest.mark.skipif(not WIKITEXT.is_file(), reason="shared WikiText-2 not present")


def fake_hub(monkeypatch, rows: dict):
    """Replace datasets.load_dataset by an in-process dataset; returns the list of calls made."""
    calls = []

    def load_dataset(path, name=None, **kw):
        calls.append((path, name, kw.get("split"), kw.get("streaming", False)))
        return datasets.Dataset.from_dict(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_names_are_builtins():
    assert set(BUILTIN_DATASETS) == {"pydoc_topics", "wikitext2", "wikitext103", "ptb", "c4-validation", "lambada"}


@needs_wikitext
def test_wikitext2_local_copy_gives_the_62_articles_of_the_documents_config():
    docs = load_documents(DatasetConfig(builtin="wikitext2", path=str(WIKITEXT)))
    cfg, _ = load_config(REPO / "configs" / "wikitext2_documents.yaml")
    reference = load_documents(cfg.datasets[0])
    assert len(docs.texts) == 62
    assert docs.texts == reference.texts and docs.fingerprint == reference.fingerprint
    assert docs.texts[0].startswith(" = Robert Boulter = \r\n") and docs.texts[1].startswith(" = Du Fu = \r\n")
    assert docs.source["builtin"] == "wikitext2" and docs.source["path"] == str(WIKITEXT.resolve())  # recorded resolved


@needs_wikitext
def test_wikitext2_from_hub_rows_are_lines_joined_into_articles(monkeypatch):
    lines = WIKITEXT.read_bytes().decode().replace("\r\n", "\n").splitlines(keepends=True)
    rows = [x for line in lines for x in ("", line)]  # the hub's rows: lines, blank ones empty
    calls = fake_hub(monkeypatch, {"text": rows})
    docs = load_documents(DatasetConfig(builtin="wikitext2"))
    assert calls == [("wikitext", "wikitext-2-raw-v1", "test", False)]
    local = load_documents(DatasetConfig(builtin="wikitext2", path=str(WIKITEXT)))
    assert len(docs.texts) == 62
    assert docs.texts == [t.replace("\r\n", "\n") for t in local.texts]
    assert docs.source == {"builtin": "wikitext2", "hub": "wikitext", "config": "wikitext-2-raw-v1",
                           "split": "test", "revision": None}
    assert load_documents(DatasetConfig(builtin="wikitext103")).texts == docs.texts
    assert calls[-1] == ("wikitext", "wikitext-103-raw-v1", "test", False)


def test_ptb_sentences_joined_by_newline_into_one_document(monkeypatch, tmp_path):
    calls = fake_hub(monkeypatch, {"sentence": [" aer banknote berlitz", " pierre <unk> N years old", ""]})
    docs = load_documents(DatasetConfig(builtin="ptb"))
    assert calls == [("ptb_text_only", "penn_treebank", "test", False)]
    assert docs.texts == [" aer banknote berlitz\n pierre <unk> N years old\n"]
    (tmp_path / "ptb.test.txt").write_text(" a b\n c d\n")
    assert load_documents(DatasetConfig(builtin="ptb", path=str(tmp_path / "ptb.test.txt"))).texts == [" a b\n c d\n"]


def test_lambada_rows_are_documents(monkeypatch, tmp_path):
    calls = fake_hub(monkeypatch, {"text": ["first passage ending in word", "second one"]})
    assert load_documents(DatasetConfig(builtin="lambada")).texts == ["first passage ending in word", "second one"]
    assert calls == [("EleutherAI/lambada_openai", None, "test", False)]
    (tmp_path / "lambada_test.jsonl").write_text('{"text": "x y"}\n{"text": "z"}\n')
    assert load_documents(DatasetConfig(builtin="lambada", path=str(tmp_path / "lambada_test.jsonl"))).texts == ["x y", "z"]


def test_c4_validation_local_gz_copy_keeps_the_first_1000(tmp_path):
    path = tmp_path / "c4-validation.00000-of-00008.json.gz"
    path.write_bytes(gzip.compress("".join(json.dumps({"text": f"doc {i}", "url": "u"}) + "\n"
                                           for i in range(1005)).encode()))
    docs = load_documents(DatasetConfig(builtin="c4-validation", path=str(path)))
    assert len(docs.texts) == 1000 and docs.texts[0] == "doc 0" and docs.texts[-1] == "doc 999"
    assert len(load_documents(DatasetConfig(builtin="c4-validation", path=str(path), limit=7)).texts) == 7


def test_offline_without_path_is_one_fast_line():
    """conftest sets HF_HUB_OFFLINE: the real load_dataset reads the (empty) cache and the error says what to do."""
    t = time.perf_counter()
    with pytest.raises(UserError) as e:
        load_documents(DatasetConfig(builtin="wikitext2"))
    msg = str(e.value)
    assert time.perf_counter() - t < 10
    assert "'wikitext'" in msg and "set path: to a local copy" in msg and "HF_HUB_OFFLINE" in msg
    assert "\n" not in msg


def test_unreachable_hub_fails_at_once_without_retries(monkeypatch):
    import huggingface_hub

    class ConnectError(Exception):  # what httpx raises for a DNS failure
        pass

    def dataset_info(self, repo_id, **kw):
        raise ConnectError("[Errno -2] Name or service not known")

    def load_dataset(*a, **kw):  # would retry for ~25 s
        raise AssertionError("load_dataset must not be reached")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    with pytest.raises(UserError, match=r"datasets\[c4-validation\]: cannot reach the Hugging Face hub for "
                                        r"'allenai/c4' \(\[Errno -2\] Name or service not known\); set path: "
                                        r"to a local copy, or HF_HUB_OFFLINE=1"):
        load_documents(DatasetConfig(builtin="c4-validation"))


def test_unknown_hub_id_online_is_named(monkeypatch):
    import huggingface_hub

    class RepositoryNotFoundError(Exception):  # huggingface_hub's needs a real HTTP response to build
        pass

    def dataset_info(self, repo_id, **kw):
        raise RepositoryNotFoundError("404 Client Error")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", dataset_info)
    with pytest.raises(UserError, match="hub dataset 'org/nope' not found on the Hugging Face hub"):
        load_documents(DatasetConfig(hub="org/nope"))


@pytest.mark.parametrize("written, meant", [("wikitext", "wikitext"), ("allenai/c4", "allenai/c4"),
                                            ("lambada_openai", "EleutherAI/lambada_openai")])
def test_hub_id_written_as_path_gets_a_hint(tmp_path, written, meant):
    models = [{"path": "org/model"}]
    (tmp_path / "run.yaml").write_text(json.dumps({"models": models, "datasets": [{"path": written}]}))
    with pytest.raises(UserError) as e:
        load_config(tmp_path / "run.yaml")
    assert str(e.value).endswith(f"does not exist; did you mean `hub: {meant}`?")
    assert f"path {str(tmp_path / written)!r}" in str(e.value)


def test_builtin_fields_can_be_overridden_and_pydoc_takes_no_path():
    cfg = DatasetConfig(builtin="ptb", mode="documents", limit=5)
    assert (cfg.mode, cfg.limit, cfg.text_field, cfg.separator) == ("documents", 5, "sentence", "\n")
    with pytest.raises(ValueError, match="pydoc_topics ships with Python"):
        DatasetConfig(builtin="pydoc_topics", path="x.txt")
    with pytest.raises(ValueError, match="exactly one of"):
        DatasetConfig(builtin="ptb", hub="ptb_text_only")
