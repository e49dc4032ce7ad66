"""Device and dtype selection (the CUDA path, checked on CPU), paths, fingerprints, the token cache."""

import pytest
import torch

from lm_eval_it.backends import tokenizer as tokens
from lm_eval_it.backends.hf import load as models
from lm_eval_it.backends.hf import locate
from lm_eval_it.backends.hf import scorer as scoring
from lm_eval_it.errors import UserError


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.resolve_device("auto") == "cuda"
    assert models.resolve_device("cuda:1") == "cuda:1"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert models.resolve_device("auto") == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert models.resolve_device("auto") == "cpu"
    with pytest.raises(UserError, match="no CUDA device"):
        models.resolve_device("cuda")


def test_dtype_auto_is_bf16_on_cuda_and_fp32_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert models.resolve_dtype("auto", "cuda:0") == "bfloat16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert models.resolve_dtype("auto", "cuda") == "float16"
    assert models.resolve_dtype("auto", "cpu") == "float32"
    assert models.resolve_dtype("float16", "cpu") == "float16"


def test_auto_batch_size(monkeypatch, tiny):
    model, _ = tiny
    assert scoring.auto_batch_size("cpu", 1024, model) == 4
    assert scoring.auto_batch_size("cpu", 8192, model) == 1
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (80 * 2**30, 80 * 2**30))
    big = scoring.auto_batch_size("cuda", 1024, model)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda: (2**24, 80 * 2**30))
    assert 1 <= scoring.auto_batch_size("cuda", 1024, model) < big <= 256


def test_pkg_paths_and_missing_packages():
    assert locate.resolve_path("pkg://json").endswith("json")
    with pytest.raises(UserError, match="is not installed"):
        locate.resolve_path("pkg://no_such_package_xyz")
    assert locate.resolve_path("org/name") == "org/name"  # a hub id is left as it is


def test_folder_fingerprint_changes_with_content(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "w.bin").write_bytes(b"a" * (3 << 20))
    before = models.folder_fingerprint(tmp_path)
    (tmp_path / "w.bin").write_bytes(b"a" * (3 << 20 - 1) + b"b")
    assert models.folder_fingerprint(tmp_path) != before


def test_token_cache_tokenizes_once(tmp_path, monkeypatch, tiny):
    from types import SimpleNamespace

    from lm_eval_it.engine import prepare as prep

    _, tok = tiny
    ev = SimpleNamespace(prefix="auto", window=16, stride=16, window_unit="tokens", strict_window=False)
    texts = ["hello world", "second text\r\n"]
    first = prep.prepare(tok, texts, "d", "tok:data", tmp_path, ev, 512, "m")
    ids = [first.store.read(d, 0, first.store.length(d)).tolist() for d in range(2)]
    assert ids == tokens.encode(tok, texts)
    calls = []
    monkeypatch.setattr(prep, "encode", lambda *a: calls.append(1) or [[] for _ in a[1]])
    again = prep.prepare(tok, texts, "d", "tok:data", tmp_path, ev, 512, "m")  # from the cache
    assert [again.store.read(d, 0, again.store.length(d)).tolist() for d in range(2)] == ids and calls == []
    prep.prepare(tok, texts, "d", "tok:other", tmp_path, ev, 512, "m")
    assert calls == [1]


def test_the_gguf_cache_files_get_the_umask_mode_like_their_neighbours(tmp_path, monkeypatch, tiny_model_dir):
    """safetensors writes model.safetensors 0600; under umask 022 every cached file is 0644, folders 0755."""
    import os
    import stat

    import transformers
    from conftest import byte_level_tokenizer, tiny_llama

    tok = byte_level_tokenizer()
    monkeypatch.setattr(models, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **kw: tok)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **kw: tiny_llama(len(tok)))
    (tmp_path / "m.gguf").write_bytes(b"GGUF stand-in: the conversion is stubbed")
    old = os.umask(0o022)
    try:
        target, _ = models._gguf_to_cache(str(tmp_path), "m.gguf", trust=False)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir()}
    assert "model.safetensors" in modes and "config.json" in modes
    assert modes == {name: 0o644 for name in modes}, modes
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
