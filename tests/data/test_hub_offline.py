"""An unreachable hub is one quick UserError (or the cached snapshot); a reachable hub is left to the loader."""

import http.server
import logging
import threading
import time

import pytest
from conftest import fake_hub_cache

from lm_eval_it.backends.hf import load as models
from lm_eval_it.config import ModelConfig
from lm_eval_it.errors import UserError


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """Online mode, an empty cache in tmp_path/hub, and an endpoint that refuses connections."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("LM_EVAL_IT_CACHE", str(tmp_path / "cache"))
    return constants


def test_unreachable_hub_fails_fast_with_one_line(hub, caplog):
    t0 = time.perf_counter()
    with caplog.at_level(logging.INFO), pytest.raises(UserError) as e:
        models.load_model(ModelConfig(path="some-org/some-model"), "cpu")
    assert time.perf_counter() - t0 < 10  # the loader's own retries took ~25-35 s
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(
        "model 'some-model' (some-org/some-model) could not be loaded: the Hugging Face hub is unreachable (")
    assert msg.endswith("and it is not cached; set HF_HUB_OFFLINE=1 to use only the local cache, or give a local path")
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]


def test_offline_and_not_cached(hub, monkeypatch):
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match=r"^model 'm' \(some-org/some-model@v2\) could not be loaded: it is not in the "
                                        r"local Hugging Face cache and HF_HUB_OFFLINE is set; download it once online, "
                                        r"or give a local path$"):
        models.load_model(ModelConfig(path="some-org/some-model", name="m", revision="v2"), "cpu")


def test_unreachable_hub_uses_a_cached_snapshot(hub, tmp_path, tiny_model_dir, caplog):
    fake_hub_cache(tmp_path / "hub", "org/tiny", tiny_model_dir)
    assert models.hub_access("org/tiny", None) == {"local_files_only": True}
    assert "unreachable; using the cached snapshot of org/tiny" in caplog.text
    t0 = time.perf_counter()
    lm = models.load_model(ModelConfig(path="org/tiny"), "cpu")  # from the cache, without the loader's retries
    assert time.perf_counter() - t0 < 10
    assert lm.fingerprint == "folder-sha256:" + models.folder_fingerprint(tiny_model_dir)
    assert lm.tokenizer_fingerprint == "tokenizer-sha256:" + models.tokenizer_fingerprint(tiny_model_dir)


class _Hub(http.server.BaseHTTPRequestHandler):
    status = 404

    def do_GET(self):  # noqa: N802
        body = b'{"id": "org/name", "sha": "abc"}' if self.status == 200 else b'{"error": "Repository not found"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.mark.parametrize("status", [200, 404])
def test_a_hub_that_answers_is_left_to_the_loader(hub, monkeypatch, status):
    handler = type("H", (_Hub,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(hub, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert models.hub_access("org/name", None) == {}  # found, or "not found" from the hub itself
    finally:
        server.shutdown()
