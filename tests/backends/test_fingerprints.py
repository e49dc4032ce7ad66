"""Fingerprints hash every byte; digests are cached by path, size, mtime and inode; model and tokenizer apart."""

import os
import shutil

import pytest
import torch
from conftest import fake_hub_cache
from safetensors.torch import load_file, save_file

from lm_eval_it.backends import fingerprints
from lm_eval_it.backends.hf import load as models
from lm_eval_it.config import ModelConfig

OLD_NS = 1_600_000_000 * 10**9  # 2020: well past the "racy" window


@pytest.fixture
def hashed(monkeypatch, tmp_path):
    """Digest cache in a temp folder; returns the list of files actually read by sha256."""
    monkeypatch.setenv("LM_EVAL_IT_CACHE", str(tmp_path / "cache"))
    calls = []
    real = fingerprints.sha256_file
    monkeypatch.setattr(fingerprints, "sha256_file", lambda p, *a: calls.append(os.path.basename(p)) or real(p, *a))
    return calls


def weights_folder(folder):
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {"a": 0}}}')
    (folder / "README.md").write_text("notes")
    tensors = {k: torch.arange(300_000, dtype=torch.float32) + i for i, k in enumerate(("a", "b", "c"))}
    save_file(tensors, folder / "model.safetensors")  # 3.6 MB: a, b, c stored in name order
    return folder / "model.safetensors"


def test_bytes_in_the_middle_change_the_fingerprint(tmp_path, hashed):
    path = weights_folder(tmp_path / "m")
    before = models.folder_fingerprint(path.parent)
    old = path.read_bytes()
    t = load_file(path)
    t["b"] *= 2  # the middle tensor only: size, first MiB and last MiB stay the same
    save_file(t, path)
    new = path.read_bytes()
    assert len(new) == len(old) > 2 << 20 and new != old
    assert new[: 1 << 20] == old[: 1 << 20] and new[-(1 << 20):] == old[-(1 << 20):]
    assert models.folder_fingerprint(path.parent) != before


def test_unchanged_files_are_served_from_the_cache(tmp_path, hashed):
    path = weights_folder(tmp_path / "m")
    for f in path.parent.iterdir():
        os.utime(f, ns=(OLD_NS, OLD_NS))
    first = models.folder_fingerprint(path.parent), models.tokenizer_fingerprint(path.parent)
    assert sorted(hashed) == ["config.json", "model.safetensors", "tokenizer.json"]  # not README.md
    hashed.clear()
    assert (models.folder_fingerprint(path.parent), models.tokenizer_fingerprint(path.parent)) == first
    assert hashed == []
    os.utime(path, ns=(OLD_NS + 1, OLD_NS + 1))  # touched: same bytes, hashed again, same digest
    assert models.folder_fingerprint(path.parent) == first[0] and hashed == ["model.safetensors"]
    entry, = [p for p in (tmp_path / "cache" / "fingerprints").iterdir()
              if '"mtime_ns": %d' % (OLD_NS + 1) in p.read_text()]
    assert fingerprints.sha256_file(path) in entry.read_text()


def test_fresh_files_are_not_cached(tmp_path, hashed):
    path = weights_folder(tmp_path / "m")  # just written: a same-tick rewrite could keep mtime and size
    models.folder_fingerprint(path.parent)
    models.folder_fingerprint(path.parent)
    assert hashed.count("model.safetensors") == 2


def test_model_and_tokenizer_fingerprints_are_separate(tmp_path, hashed):
    path = weights_folder(tmp_path / "m")
    folder = path.parent
    model, tok = models.folder_fingerprint(folder), models.tokenizer_fingerprint(folder)
    (folder / "tokenizer.json").write_text('{"model": {"vocab": {"b": 0}}}')
    assert models.folder_fingerprint(folder) == model and models.tokenizer_fingerprint(folder) != tok
    (folder / "README.md").write_text("other notes")
    (folder / "config.json").write_text('{"model_type": "mistral"}')
    assert models.folder_fingerprint(folder) != model


def test_load_model_reports_both_fingerprints(tmp_path, hashed, tiny_model_dir):
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    lm = models.load_model(ModelConfig(path=str(folder)), "cpu")
    assert lm.fingerprint == "folder-sha256:" + fingerprints.digest_files(
        [folder / "config.json", folder / "model.safetensors"])
    assert sorted(p.name for p in fingerprints.tokenizer_files(folder)) == ["tokenizer.json", "tokenizer_config.json"]
    assert lm.tokenizer_fingerprint == "tokenizer-sha256:" + fingerprints.digest_files(
        [folder / "tokenizer.json", folder / "tokenizer_config.json"])


def test_hub_ids_hash_their_cached_snapshot(tmp_path, hashed, tiny_model_dir, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = fake_hub_cache(tmp_path / "hub", "org/tiny", tiny_model_dir)
    model, tok = models.hub_fingerprints("org/tiny", snapshot.name)
    assert model == "folder-sha256:" + models.folder_fingerprint(tiny_model_dir)
    assert tok == "tokenizer-sha256:" + models.tokenizer_fingerprint(tiny_model_dir)
    assert models.hub_fingerprints("org/absent", "main") == ("hub:org/absent@main", "hub:org/absent@main")
