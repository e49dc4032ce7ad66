"""The compress and decompress commands refuse bad flags and unwritable outputs in one line, before any coding,
decompress takes the file's dtype and model, and a relative model folder is recorded as an absolute path."""

import pytest
from conftest import perturbed_copy

from lm_eval_it.cli import main
from lm_eval_it.compress import api, container


@pytest.fixture
def src(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_bytes(b"a short note to code\n")
    return f


@pytest.mark.parametrize("flags, message", [
    (["--dtype", "fp64"], "--dtype: got 'fp64'"), (["--device", "tpu"], "--device: got 'tpu'"),
    (["-o", "{tmp}/no/such/dir/x.lmz"], "does not exist"), (["-o", "{tmp}", "--force"], "is a folder")])
def test_bad_flags_and_outputs_are_refused_in_one_line(src, tiny_model_dir, tmp_path, capsys, flags, message):
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert main(["compress", str(src), "-m", str(tiny_model_dir), "--quiet", *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "notes.txt.lmz").exists()


def test_decompress_takes_the_files_dtype_and_its_absolute_model_path(src, tiny_model_dir, tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tiny_model_dir.parent)
    assert main(["compress", str(src), "-m", tiny_model_dir.name, "--dtype", "bfloat16", "--quiet"]) == 0
    blob = (tmp_path / "notes.txt.lmz").read_bytes()
    header = container.header_only(blob)
    assert header["settings"]["model_spec"] == str(tiny_model_dir.resolve())
    assert api.recorded_dtype(blob) == "bfloat16" and header["settings"]["dtype"] == "bfloat16"
    monkeypatch.chdir(tmp_path)
    assert main(["decompress", "notes.txt.lmz", "-o", "copy.txt", "--quiet"]) == 0, capsys.readouterr().err
    assert (tmp_path / "copy.txt").read_bytes() == src.read_bytes()


def test_a_chunk_past_the_models_context_is_clamped_to_it_as_a_run_clamps_its_window(src, tiny_model_dir):
    lm = api.load_backend(str(tiny_model_dir))
    blob, _ = api.compress_bytes(src.read_bytes(), lm, chunk=100_000, lanes=2)
    assert container.header_only(blob)["chunk"] == lm.model.config.max_position_embeddings == 512
    assert api.decompress_bytes(blob, lm)[0] == src.read_bytes()


def test_another_models_file_is_refused_naming_both_models(src, tiny_model_dir, tmp_path, capsys):
    other = perturbed_copy(tiny_model_dir, tmp_path / "other", seed=5)
    assert main(["compress", str(src), "-m", str(tiny_model_dir), "--quiet"]) == 0
    assert main(["decompress", f"{src}.lmz", "-m", str(other), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err  # in process, the loading bar shares stderr; the refusal is its last line
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and "another model (tiny" in last and "it was compressed with" in last, err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
