"""Atomic writes honour the umask: results and comparisons are readable by the group and others under 022."""

import os
import stat

import pytest

from lm_eval_it.io import atomic_write_bytes, atomic_write_text
from lm_eval_it.report.compare.build import write_comparison


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_helpers_use_umask_and_leave_no_temporary(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "héllo\r\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_bytes() == "héllo\r\n".encode()
    assert mode(tmp_path / "a.txt") == 0o644 and mode(tmp_path / "b.bin") == 0o644
    os.umask(0o077)
    atomic_write_text(tmp_path / "a.txt", "x")
    assert mode(tmp_path / "a.txt") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


ROW = {"model": "m", "dataset": "d", "dataset_fingerprint": "f" * 64, "tokenizer": {"fingerprint": "t"},
       "metrics": {"docs": 2, "tokens": 4, "bytes": 10, "nll": 3.0, "token_perplexity": 2.0, "bits_per_token": 1.0,
                   "bits_per_byte": 0.4, "bits_per_word": 2.0, "word_perplexity": 4.0, "bits_per_char": 0.4,
                   "tokens_per_byte": 0.4, "tokens_per_word": 2.0, "bytes_per_token": 2.5},
       "per_document": [{"nll": 1.0, "bytes": 5}, {"nll": 2.0, "bytes": 5}],
       "eval": {"prefix": "bos:<s>", "window": 16}, "timing": {"tokens_per_second": 1.0}}


def test_run_and_comparison_files_are_0644(run_config, tiny_model_dir, umask_022):
    from lm_eval_it.report.compare.build import build_comparison

    folder = run_config({"tiny": tiny_model_dir}, ["The quick brown fox jumps over the lazy dog.\r\n",
                                                   "Numbers: 3.14159 and 2.71828, héllo wörld!", ""],
                        name="t", dataset="toy", eval={"window": 16, "stride": 8, "batch_size": 4, "device": "cpu"}).folder
    write_comparison(folder, build_comparison([ROW]))
    names = {"results.json", "summary.md", "report.html", "comparison.md", "comparison.csv", "comparison.html"}
    modes = {p.name: mode(p) for p in folder.iterdir()}
    assert names <= set(modes)
    assert modes == dict.fromkeys(modes, 0o644)


def test_honour_umask_gives_library_written_files_the_umask_mode(tmp_path):
    from lm_eval_it.io import honour_umask

    (tmp_path / "sub").mkdir(mode=0o700)
    for p in (tmp_path / "a.safetensors", tmp_path / "sub" / "b.json"):
        p.write_text("x")
        p.chmod(0o600)
    old = os.umask(0o027)
    try:
        honour_umask(tmp_path)
    finally:
        os.umask(old)
    assert mode(tmp_path / "a.safetensors") == mode(tmp_path / "sub" / "b.json") == 0o640
    assert mode(tmp_path / "sub") == mode(tmp_path) == 0o750
