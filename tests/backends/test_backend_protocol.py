"""The Backend protocol: the Hugging Face backend conforms, capabilities come from the class, unmet needs are one
line, and a backend that gives only the targets' log-probs scores through the engine's NLL path."""

import numpy as np
import pytest
import torch
from conftest import corpus

from lm_eval_it.backends.base import (
    Backend,
    Capability,
    ModelFacts,
    Tokenizer,
    WindowScorer,
    unmet,
)
from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.backends.llamacpp.backend import LlamaCppBackend
from lm_eval_it.backends.openai.backend import OpenAIBackend
from lm_eval_it.backends.logits import TargetLogprobScorer, token_nll
from lm_eval_it.backends.registry import (
    BACKENDS,
    backend_class,
    load_model,
    refuse_unmet,
)
from lm_eval_it.backends.tokenizer import encode, tokenizer_info
from lm_eval_it.config import ModelConfig
from lm_eval_it.config.load import parse_config
from lm_eval_it.data.documents import Documents
from lm_eval_it.engine.execute import score_sequences
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.errors import UserError
from lm_eval_it.run.scoring import score_dataset
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.memorisation.statistic import MinKProb

ENTRY_KEYS = ["name", "fingerprint", "source", "dtype", "device", "max_positions", "load_seconds", "vocab_size",
              "tokenizer", "split_head", "tokenizer_fingerprint", "backend"]


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    return load_model(ModelConfig(path=str(tiny_model_dir), name="tiny"), "cpu")


def test_the_hf_backend_satisfies_the_protocol(hf):
    assert isinstance(hf, HFBackend) and isinstance(hf, Backend)
    assert isinstance(hf.tokenizer, Tokenizer) and isinstance(hf.scorer(), WindowScorer)
    assert (hf.name, hf.device, hf.dtype, hf.max_positions) == ("tiny", "cpu", "float32", 512)


def test_capabilities_are_declared_on_the_class_before_anything_loads():
    cls = backend_class("hf")
    assert cls is HFBackend and BACKENDS == {"hf": HFBackend, "llama.cpp": LlamaCppBackend, "openai": OpenAIBackend}
    assert OpenAIBackend.capabilities == frozenset({Capability.TARGET_LOGPROBS})  # a server: no logits
    assert LlamaCppBackend.capabilities == cls.capabilities  # known without llama-cpp-python installed
    assert cls.capabilities == frozenset({Capability.FULL_LOGITS, Capability.TARGET_LOGPROBS})
    assert [c.value for c in Capability] == ["full_logits", "target_logprobs"]
    with pytest.raises(UserError, match=r"^models\[\]\.backend: got 'vllm'; expected one of hf, llama.cpp, openai$"):
        backend_class("vllm")


def test_a_model_whose_backend_lacks_a_need_is_refused_before_it_loads(monkeypatch):
    monkeypatch.setattr(HFBackend, "capabilities", frozenset({Capability.TARGET_LOGPROBS}))
    monkeypatch.setattr(HFBackend, "load", lambda *a: pytest.fail("loaded"))
    cfg = ModelConfig(path="org/never-loaded", name="m")
    with pytest.raises(UserError) as e:
        refuse_unmet(cfg, {"temperature": {Capability.FULL_LOGITS}, "context": {Capability.TARGET_LOGPROBS}})
    assert str(e.value) == ("model 'm': statistic 'temperature' needs full_logits, which backend 'hf' does not give "
                            "(it gives target_logprobs)")
    refuse_unmet(cfg, {"context": {Capability.TARGET_LOGPROBS}})


def test_unmet_needs_are_one_line_naming_statistics_capability_and_backend():
    needs = {"temperature": {Capability.FULL_LOGITS}, "kl": {Capability.FULL_LOGITS},
             "context": {Capability.TARGET_LOGPROBS}}
    msg = unmet(needs, frozenset({Capability.TARGET_LOGPROBS}), "openai")
    assert msg == "statistics 'kl', 'temperature' need full_logits, which backend 'openai' does not give (it gives target_logprobs)"
    assert "\n" not in msg
    assert unmet({"kl": [Capability.FULL_LOGITS]}, [], "x") == (
        "statistic 'kl' needs full_logits, which backend 'x' does not give (it gives nothing)")
    assert unmet(needs, HFBackend.capabilities, "hf") is None
    assert unmet({}, [], "x") is None


def test_model_facts_are_todays_models_entry(hf, tiny_model_dir):
    from lm_eval_it.backends.fingerprints import folder_fingerprint

    scorer = hf.scorer()
    facts = hf.facts(scorer)
    assert isinstance(facts, ModelFacts)
    entry = facts.entry()
    assert list(entry) == ENTRY_KEYS
    assert entry["vocab_size"] == scorer.vocab == len(hf.tokenizer) == 400
    assert entry["split_head"] is True and entry["dtype"] == "float32" and entry["max_positions"] == 512
    assert entry["tokenizer"] == tokenizer_info(hf.loaded.tokenizer)
    assert entry["fingerprint"] == f"folder-sha256:{folder_fingerprint(tiny_model_dir)}"
    assert entry["source"] == {"path": str(tiny_model_dir), "revision": None}
    assert entry["tokenizer_fingerprint"].startswith("tokenizer-sha256:")
    assert entry["backend"] == "hf"


def test_the_tokenizer_adapter_gives_the_hugging_face_answers(hf):
    from lm_eval_it.backends.tokenizer import token_byte_lengths

    raw, tok = hf.loaded.tokenizer, hf.tokenizer
    texts = [corpus()[3][:500], "héllo wörld 日本"]
    assert tok.encode_texts(texts) == encode(raw, texts) == encode(tok, texts)
    assert np.array_equal(tok.byte_lengths(), token_byte_lengths(raw))
    assert np.array_equal(token_byte_lengths(tok), token_byte_lengths(raw))
    ids = encode(raw, texts)[1]
    assert tok.decode(ids) == raw.decode(ids, clean_up_tokenization_spaces=False) == texts[1]
    assert (tok.bos_token_id, tok.eos_token_id, tok.bos_token, tok.eos_token) == (0, 1, "<s>", "</s>")
    assert tok.get_vocab() == raw.get_vocab() and tok.info() == tokenizer_info(raw)


class LogprobsOnly(TargetLogprobScorer):
    """A stand-in for an OpenAI-compatible server: log p(target) per scored position, no logits."""

    def __init__(self, model, vocab: int):
        self.model, self.vocab = model, vocab
        self.calls = 0

    def target_logprobs(self, ids, mask, rows, cols, targets):
        self.calls += 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[rows, cols].float()
        return -token_nll(logits, targets)


class LogprobBackend:
    """A whole backend that has only TARGET_LOGPROBS (its tokenizer borrowed from the HF backend)."""

    kind = "fake"
    capabilities = frozenset({Capability.TARGET_LOGPROBS})

    def __init__(self, hf: HFBackend):
        self.hf = hf
        self.name, self.device, self.dtype, self.max_positions = "fake", "cpu", "float32", hf.max_positions
        self.fingerprint, self.tokenizer_fingerprint, self.tokenizer = "fake", "fake", hf.tokenizer

    def scorer(self, reference=None):
        return LogprobsOnly(self.hf.model, len(self.tokenizer))

    def auto_batch_size(self, window: int) -> int:
        return 3

    def facts(self, scorer):
        return ModelFacts("fake", "fake", {}, "float32", "cpu", self.max_positions, 0.0, scorer.vocab,
                          self.tokenizer.info(), None, "fake")


def test_a_target_logprob_backend_scores_through_the_nll_path(hf):
    """No logits: NLL, the context curve and Min-K% still reduce, to the full-logits backend's numbers."""
    seqs = [[0] + ids for ids in encode(hf.loaded.tokenizer, [t[:400] for t in corpus()[5:8]])]
    plans = [plan_windows(len(s), 48, 16) for s in seqs]
    fake = LogprobBackend(hf)
    assert isinstance(fake, Backend) and unmet({"temperature": {Capability.FULL_LOGITS}}, fake.capabilities,
                                               fake.kind).startswith("statistic 'temperature' needs full_logits")
    scorer = fake.scorer()
    assert isinstance(scorer, WindowScorer) and scorer.reference is None
    stats = lambda: [ContextStats(48, 16), MinKProb(20.0)]  # noqa: E731
    got = score_sequences(scorer, seqs, plans, 4, statistics=stats())
    want = score_sequences(hf.scorer(), seqs, plans, 4, statistics=stats())
    assert scorer.calls > 0
    for a, b in zip(got, want):
        assert a.tokens == b.tokens == len(seqs[a.doc]) - 1
        np.testing.assert_allclose(a.token_nll, b.token_nll, rtol=1e-5, atol=1e-6)
        assert a.extra["min_k_logprob"] == pytest.approx(b.extra["min_k_logprob"], rel=1e-5)
        np.testing.assert_allclose(a.sums, b.sums, rtol=1e-5, atol=1e-6)


def test_a_target_logprob_backend_runs_through_score_dataset(hf, tmp_path, monkeypatch):
    monkeypatch.setenv("LM_EVAL_IT_CACHE", str(tmp_path))
    raw = {"models": [{"path": "<fake>"}], "datasets": [{"builtin": "pydoc_topics"}],
           "eval": {"window": 48, "stride": 24, "device": "cpu", "batch_size": "auto"}}
    cfg = parse_config(raw, source="test")
    docs = Documents(name="texts", texts=[t[:300] for t in corpus()[10:13]], source={"in_memory": True})
    fake = LogprobBackend(hf)
    row = score_dataset(fake, fake.scorer(), docs, cfg, show_progress=False).to_dict()
    ref = score_dataset(hf, hf.scorer(), docs, cfg, show_progress=False).to_dict()
    assert row["eval"]["batch_size"] == 3 and row["model"] == "fake"
    assert row["metrics"]["tokens"] == ref["metrics"]["tokens"] > 0
    assert [d["nll"] for d in row["per_document"]] == pytest.approx([d["nll"] for d in ref["per_document"]],
                                                                    rel=1e-6)
    assert row["context_length"] is not None and row["temperature"] is None


def test_score_dataset_refuses_a_statistic_its_backend_cannot_serve(hf, tmp_path, monkeypatch):
    monkeypatch.setenv("LM_EVAL_IT_CACHE", str(tmp_path))
    raw = {"models": [{"path": "<fake>"}], "datasets": [{"builtin": "pydoc_topics"}],
           "eval": {"window": 48, "device": "cpu", "temperatures": [0.5]}}
    docs = Documents(name="texts", texts=[t[:200] for t in corpus()[10:12]], source={"in_memory": True})
    fake = LogprobBackend(hf)
    with pytest.raises(UserError, match=r"^statistic 'temperature' needs full_logits, which backend 'fake' does not give"):
        score_dataset(fake, fake.scorer(), docs, parse_config(raw, source="test"), show_progress=False)
