"""Compress and decompress with a model: byte-identical round trips in fresh processes, a size that is the model's
code length, and one-line refusals (other model, other setting, corrupted file) that write nothing."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import corpus, perturbed_copy
from test_compress_format import FILES

from lm_eval_it.compress import api, container
from lm_eval_it.errors import UserError


@pytest.fixture(scope="module")
def lm(tiny_model_dir):
    return api.load_backend(str(tiny_model_dir))


def cli(*args, env_threads="1") -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS=env_threads)
    return subprocess.run([sys.executable, "-m", "lm_eval_it", *args], capture_output=True, text=True, env=env,
                          timeout=600)


@pytest.mark.parametrize("name", sorted(FILES))
def test_any_file_round_trips_in_process(lm, name):
    data = FILES[name]
    blob, report = api.compress_bytes(data, lm, chunk=32, lanes=3)
    out, _ = api.decompress_bytes(blob, lm)
    assert out == data
    assert report["original_bytes"] == len(data) and report["container_bytes"] == len(blob)


def test_the_body_is_the_models_code_length_plus_a_few_bits(lm):
    """Text only: the body's bits are the model's −log2 p of every target, plus the lane starts at log2 V bits
    each, plus at most a few dozen bits of coder overhead, and the model's bits are the run's NLL."""
    text = "\n".join(corpus()[:3]).encode()[:6000]
    blob, r = api.compress_bytes(text, lm, chunk=64, lanes=4)
    lanes = 4 - 1
    vocab = lm.model.get_output_embeddings().weight.shape[0]
    overhead = 8 * r["body_bytes"] - r["model_bits_per_byte"] * len(text) - lanes * math.log2(vocab)
    assert -40 < overhead < 64 + 0.002 * r["tokens"], overhead
    assert r["escaped_bytes"] == 0 and r["tokens"] > 1000
    assert math.isclose(r["body_minus_code_length_bits"], overhead, abs_tol=1e-6)
    assert math.isclose(r["code_length_bits_per_byte"] * len(text), 8 * r["body_bytes"] - overhead, rel_tol=1e-12)


def test_an_overconfident_models_code_length_stays_finite_and_the_file_round_trips(tiny_model_dir):
    """Targets a float32 softmax rounds to probability 0 still have a finite −log2 p (float64 log-softmax),
    and the coder still codes them (its floor), so the body can be shorter than the model's count."""
    lm = api.load_backend(str(tiny_model_dir))
    with torch.no_grad():
        lm.model.get_output_embeddings().weight.mul_(30.0)
    text = "\n".join(corpus()[:1]).encode()[:300]
    blob, r = api.compress_bytes(text, lm, chunk=512, lanes=1)  # one window: a full forward is the reference
    assert api.decompress_bytes(blob, lm)[0] == text
    ids = api.segments.tokens(api.segments.split(text, lm.tokenizer))
    s = torch.tensor([[api._bos(lm), *ids.tolist()]])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(input_ids=s[:, :-1]).logits.double(), dim=-1)[0]
    want = -logp[torch.arange(len(ids)), s[0, 1:]].sum().item() / math.log(2)
    assert math.isfinite(r["model_bits_per_byte"]) and want > 24 * 5  # some targets cost more than the floor
    assert math.isclose(r["model_bits_per_byte"] * len(text), want, rel_tol=1e-4)
    assert json.loads(json.dumps(r, allow_nan=False)) == r


def test_an_empty_files_report_is_strict_json():
    r = api.report(b"", container.pack({"x": 1}, np.zeros(0, np.uint32)), 0.0, 0, 0, 0.0, 0.1)
    assert r["bits_per_byte"] is None and r["model_bits_per_byte"] is None
    json.dumps(r, allow_nan=False)


@pytest.mark.parametrize("field, value", [("lanes", 0), ("chunk", 0), ("tokens", -1), ("chunk", 10 ** 9),
                                          ("threads", None), ("segments", [["text", 1]])])
def test_a_header_with_counts_out_of_range_is_refused_in_one_line(lm, field, value):
    blob, _ = api.compress_bytes(b"some text to code", lm, chunk=8, lanes=2)
    header, body = container.unpack(blob)
    (header["settings"] if field == "threads" else header)[field] = value
    with pytest.raises(UserError, match=f"header's {field}" if field != "segments" else "segments do not add up"):
        api.decompress_bytes(container.pack(header, body), lm)


def test_the_models_bits_are_those_a_run_reports_with_window_equal_to_stride(lm, tiny_model_dir, run_config):
    """The codec's probabilities come from incremental decoding; a run's from full windows. With window = stride =
    the chunk and the same BOS, the windows are the same (the last one back-filled on both sides), so the code
    length is the run's NLL up to float rounding."""
    trimmed = corpus()[3]
    chunk = 64
    blob, r = api.compress_bytes(trimmed.encode(), lm, chunk=chunk, lanes=2)
    run = run_config({"tiny": tiny_model_dir}, [trimmed], eval={"window": chunk, "stride": chunk, "prefix": "bos"})
    (row,) = run.results["results"]
    run_bits = row["per_document"][0]["nll"] / math.log(2)
    assert r["tokens"] == row["per_document"][0]["tokens"]
    assert math.isclose(r["model_bits_per_byte"] * len(trimmed.encode()), run_bits, rel_tol=1e-5)


def test_decompress_in_a_fresh_process_rebuilds_every_file(tmp_path, tiny_model_dir):
    names = ["crlf", "invalid utf-8", "random", "empty", "unicode"]
    for n in names:
        (tmp_path / f"{n}.bin").write_bytes(FILES[n])
    (tmp_path / "text.txt").write_text(corpus()[5])
    for f in sorted(tmp_path.glob("*.*")):
        c = cli("compress", str(f), "-m", str(tiny_model_dir), "--quiet", "--json", "--chunk", "48", "--lanes", "4")
        assert c.returncode == 0, c.stderr
        assert json.loads(c.stdout)["original_bytes"] == f.stat().st_size
        d = cli("decompress", str(f) + ".lmz", "-o", str(f) + ".out", "--quiet")  # the model the file names
        assert d.returncode == 0, d.stderr
        assert (tmp_path / (f.name + ".out")).read_bytes() == f.read_bytes()


def test_another_model_a_changed_setting_or_a_corrupted_file_is_refused_and_nothing_is_written(
        tmp_path, tiny_model_dir, lm):
    data = corpus()[1].encode()[:800]
    src = tmp_path / "a.txt"
    src.write_bytes(data)
    assert cli("compress", str(src), "-m", str(tiny_model_dir), "--quiet").returncode == 0
    lmz = tmp_path / "a.txt.lmz"
    other = perturbed_copy(tiny_model_dir, tmp_path / "other", seed=3)
    cases = {"model": (lmz.read_bytes(), ["-m", str(other)], "compressed with another model (tiny")}
    header, body = container.unpack(lmz.read_bytes())
    header["settings"]["dtype"] = "bfloat16"  # decompress takes the file's dtype unless --dtype says otherwise
    cases["setting"] = (container.pack(header, body), ["--dtype", "float32"], "compressed with dtype = 'bfloat16'")
    header["settings"]["dtype"], header["settings"]["torch"] = "float32", "0.0"
    cases["version"] = (container.pack(header, body), [], "compressed with torch = '0.0'")
    blob = bytearray(lmz.read_bytes())
    blob[-3] ^= 0x40
    cases["corrupted"] = (bytes(blob), [], "checksum mismatch")
    for name, (b, extra, message) in cases.items():
        f = tmp_path / f"{name}.lmz"
        f.write_bytes(b)
        d = cli("decompress", str(f), "-o", str(tmp_path / f"{name}.out"), "--quiet", *extra)
        assert d.returncode == 2, (name, d.stderr)
        assert message in d.stderr and d.stderr.count("\n") == 1 and "Traceback" not in d.stderr, d.stderr
        assert not (tmp_path / f"{name}.out").exists()


def test_the_decoder_takes_the_recorded_threads_and_refuses_another_cpu_capability(lm):
    blob, _ = api.compress_bytes(b"some text to code", lm, chunk=8, lanes=2)
    header, body = container.unpack(blob)
    assert header["settings"]["threads"] == torch.get_num_threads()
    header["settings"]["cpu_capability"] = "NEON"
    with pytest.raises(UserError, match="cpu_capability = 'NEON'"):
        api.decompress_bytes(container.pack(header, body), lm)
    assert np.asarray(body).dtype == np.uint32
