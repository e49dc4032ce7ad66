"""`make test` does what the README says: it installs chromium (once) before the suite, so no layout test skips."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def make(*args, path: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=path or os.environ["PATH"])
    return subprocess.run(["make", "-C", str(REPO), *args], capture_output=True, text=True, env=env)


def test_make_test_runs_the_chromium_target_first(tmp_path):
    out = make("-n", "test", f"VENV={tmp_path / 'venv'}").stdout  # dry run: prints the recipes, runs nothing
    assert "command -v chromium" in out and "apt-get install" in out
    assert out.index("command -v chromium") < out.index("-m pytest")


def test_make_test_installs_the_llamacpp_extra_before_the_suite(tmp_path):
    out = make("-n", "test", f"VENV={tmp_path / 'venv'}").stdout
    assert "[test,llamacpp" in out
    assert out.index("[test,llamacpp") < out.index("-m pytest")


def test_make_chromium_is_a_no_op_when_chromium_is_on_path(tmp_path):
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for name in ("chromium", "apt-get", "sudo"):  # fake ones: apt-get and sudo would leave a mark
        (bin_ / name).write_text(f"#!/bin/sh\necho {name} >> {tmp_path / 'called'}\n")
        (bin_ / name).chmod(0o755)
    path = f"{bin_}:{os.path.dirname(shutil.which('make'))}:/usr/bin:/bin"
    for _ in range(2):
        run = make("-s", "chromium", path=path)
        assert run.returncode == 0, run.stderr
    assert not (tmp_path / "called").exists()
