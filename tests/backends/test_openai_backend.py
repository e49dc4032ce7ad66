"""backend openai against a fake server in a thread: retries and back-off, timeouts, the probe (ids or text, the
left-out BOS, misalignment), the scorer's values, too few or garbage log-probs, the refusals, and whole runs that
stop with their resume line and resume to the same numbers."""

import json

import numpy as np
import pytest
import torch

from conftest import write_config
from openai_fake import BOS, ByteTok, Fake, logprob
from lm_eval_it.backends.openai.backend import api_key
from lm_eval_it.backends.openai.client import Client, Refused
from lm_eval_it.backends.openai.echo import Server
from lm_eval_it.backends.openai.probe import probe
from lm_eval_it.backends.openai.scorer import OpenAIScorer
from lm_eval_it.cli import main
from lm_eval_it.config.backends import OpenAIOptions
from lm_eval_it.config.load import parse_config
from lm_eval_it.errors import RunStopped, UserError
from lm_eval_it.run.statistics import refuse_unmet_needs


@pytest.fixture
def fake():
    f = Fake()
    yield f
    f.close()


def client(fake, **kw):
    waits = []
    c = Client(fake.url, **{"max_retries": 3, "timeout_s": 5.0, **kw}, sleep=waits.append)
    c.waits = waits
    return c


def test_a_429_is_retried_after_its_retry_after_then_answered(fake):
    fake.plan = [(429, {"Retry-After": "2"}), (503, {})]
    c = client(fake)
    assert c.get("models")["data"][0]["id"] == "fake-model"  # GET: no plan consumed
    answer = c.post("completions", {"prompt": [BOS, 70], "echo": True})
    assert answer["choices"][0]["logprobs"]["token_logprobs"][1] == pytest.approx(logprob([BOS], 70))
    assert c.retries == 2 and c.waits[0] == 2.0 and 0.25 <= c.waits[1] <= 1.5  # back-off 1 s ± 50% jitter


def test_a_server_that_keeps_failing_stops_the_run_naming_it(fake):
    fake.plan = [(502, {})] * 3
    with pytest.raises(RunStopped, match=r"server http://127.0.0.1:\d+/v1: HTTP 502: planned, after 2 retries"):
        client(fake, max_retries=2).post("completions", {"prompt": "x"})


def test_a_slow_answer_times_out_and_is_retried(fake):
    fake.plan = ["sleep"]
    c = client(fake, timeout_s=0.3)
    assert c.post("completions", {"prompt": [BOS, 70], "echo": True})["choices"]
    assert c.retries == 1
    fake.plan = ["sleep", "sleep"]
    with pytest.raises(RunStopped, match=r"no answer within 0.3 s \(openai.timeout_s\), after 1 retry"):
        client(fake, timeout_s=0.3, max_retries=1).post("completions", {"prompt": "x"})


def test_a_refusal_is_not_retried(fake):
    fake.plan = [(400, {})]
    with pytest.raises(Refused, match="HTTP 400: planned"):
        client(fake).post("completions", {"prompt": "x"})
    assert fake.requests == 1


def test_the_probe_sends_ids_to_a_server_that_takes_them(fake):
    s = probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url))
    assert (s.model, s.prompt, s.drops_bos, s.needs_bos) == ("fake-model", "ids", False, False)


def test_the_probe_falls_back_to_text_and_finds_the_llama_cpp_python_quirks():
    fake = Fake("llama")
    try:
        s = probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url))
        assert (s.prompt, s.drops_bos, s.needs_bos) == ("text", True, True)
        with pytest.raises(UserError, match="does not take token ids"):
            probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url, prompt="ids"))
    finally:
        fake.close()


def test_the_probe_refuses_a_server_whose_echo_is_off_by_one():
    fake = Fake("shifted")
    try:
        with pytest.raises(UserError, match="returns misaligned echoed log-probs"):
            probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url))
    finally:
        fake.close()


def _batch(texts, width, bos=True):
    tok = ByteTok()
    seqs = [([BOS] if bos else []) + tok.encode_texts([t])[0] for t in texts]
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    rows, cols, targets, want = [], [], [], []
    for r, s in enumerate(seqs):
        ids[r, : min(width, len(s))] = torch.tensor(s[:width])
        for c in range(min(width, len(s) - 1)):  # the last position predicts the token past the window
            rows.append(r), cols.append(c), targets.append(s[c + 1]), want.append(logprob(s[: c + 1], s[c + 1]))
    return ids, torch.tensor(rows), torch.tensor(cols), torch.tensor(targets), np.array(want)


@pytest.mark.parametrize("mode", ["vllm", "llama"])
def test_the_scorer_gives_every_target_its_log_prob(mode):
    fake = Fake(mode)
    try:
        s = probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url))
        ids, rows, cols, targets, want = _batch(["Hello, wörld!", "The end of it all"], width=10)
        scorer = OpenAIScorer(client(fake), s, ByteTok())
        before = len(fake.bodies)
        (i0, i1, logits, ref, nll), = scorer.chunks(ids, None, rows, cols, targets)
        assert (i0, i1, logits, ref) == (0, len(targets), None, None)
        np.testing.assert_allclose(-nll.numpy(), want, rtol=1e-6)
        assert scorer.requests == 2  # one a window (llama: and one for the first token after BOS, kept)
        sent = [b["prompt"] for b in fake.bodies[before:]]  # the requests run concurrently: in any order
        window = ids[1].tolist() + [targets[-1].item()]  # the window and the token past it
        assert (window if mode == "vllm" else "<s>The end of") in sent
    finally:
        fake.close()


def test_a_window_without_bos_is_refused_by_a_server_that_needs_one():
    fake = Fake("llama")
    try:
        s = probe(client(fake), ByteTok(), OpenAIOptions(base_url=fake.url))
        ids, rows, cols, targets, _ = _batch(["no bos here"], width=6, bos=False)
        with pytest.raises(UserError, match="aligned only for prompts that start with BOS .*'no bos ?'"):
            list(OpenAIScorer(client(fake), s, ByteTok()).chunks(ids, None, rows, cols, targets))
    finally:
        fake.close()


@pytest.mark.parametrize("garbage, message", [
    ("few", r"7 log-probs for the 9 tokens sent \(expected 9 echoed, plus the 1 generated\)"),
    ("nan", "log-prob of token 2 is nan, not a finite number <= 0"),
    ("string", "log-prob of token 2 is '-0.5', not a finite number <= 0"),
    ("positive", "log-prob of token 2 is 0.7, not a finite number <= 0"),
    ("tokens", r"token 2 is '\?\?' on the server but 'e' \(id 104\) here; the server's tokenizer does not match"),
    ("html", "answered something that is not JSON"),
    ("own_bos", r"it read the prompt as 10 tokens, not the 9 sent \(did it add its own BOS"),
])
def test_too_few_or_garbage_log_probs_stop_the_run_in_one_line(fake, garbage, message):
    s = Server(model="fake-model", prompt="ids", drops_bos=False, needs_bos=False, bos=BOS)
    ids, rows, cols, targets, _ = _batch(["Hello, world"], width=8)
    fake.garbage = garbage
    with pytest.raises(RunStopped, match=message) as e:
        list(OpenAIScorer(client(fake), s, ByteTok()).chunks(ids, None, rows, cols, targets))
    assert "\n" not in str(e.value)


def _cfg(eval_=None, **model):
    return parse_config({"models": [{"path": "m", "backend": "openai", "openai": {"base_url": "http://h/v1"},
                                     **model}], "datasets": [{"builtin": "pydoc_topics"}], "eval": eval_ or {}})


@pytest.mark.parametrize("eval_, model, statistic", [
    ({"temperatures": [0.8]}, {}, "temperature"), ({"target_rank": True}, {}, "target_rank")])
def test_statistics_that_need_full_logits_are_refused_before_anything_loads(eval_, model, statistic):
    with pytest.raises(UserError, match=f"statistic '{statistic}' needs full_logits, which backend 'openai' does not"):
        refuse_unmet_needs(_cfg(eval_, **model))


def test_kl_against_a_served_model_is_refused_before_anything_loads():
    cfg = parse_config({"models": [{"name": "a", "path": "m"}, {"name": "b", "path": "m", "backend": "openai",
                                    "compare_to": "a", "openai": {"base_url": "http://h/v1"}}],
                        "datasets": [{"builtin": "pydoc_topics"}]})
    with pytest.raises(UserError, match=r"model 'b': statistics? .*'kl'.* full_logits, which backend 'openai'"):
        refuse_unmet_needs(cfg)


def test_a_served_model_as_the_kl_reference_is_refused_before_anything_loads():
    cfg = parse_config({"models": [{"name": "ref", "path": "m", "backend": "openai", "openai": {"base_url": "http://h/v1"}},
                                   {"name": "cand", "path": "m", "compare_to": "ref"}],
                        "datasets": [{"builtin": "pydoc_topics"}]})
    with pytest.raises(UserError, match=r"model 'ref': statistic 'kl' needs full_logits, which backend 'openai'"):
        refuse_unmet_needs(cfg)


def test_the_openai_section_goes_with_its_backend_and_the_key_comes_from_the_environment(monkeypatch):
    with pytest.raises(UserError, match="`openai:` options need `backend: openai`"):
        parse_config({"models": [{"path": "m", "openai": {"base_url": "u"}}], "datasets": [{"builtin": "pydoc_topics"}]})
    with pytest.raises(UserError, match="`backend: openai` needs an `openai:` section"):
        parse_config({"models": [{"path": "m", "backend": "openai"}], "datasets": [{"builtin": "pydoc_topics"}]})
    with pytest.raises(ValueError, match="openai.fresh_windows needs concurrency 1"):
        OpenAIOptions(base_url="u", fresh_windows=True, concurrency=2)
    monkeypatch.delenv("LM_TEST_KEY", raising=False)
    with pytest.raises(UserError, match="the environment variable 'LM_TEST_KEY' is not set"):
        api_key(OpenAIOptions(base_url="u", api_key_env="LM_TEST_KEY"))
    monkeypatch.setenv("LM_TEST_KEY", "sk-1")
    assert api_key(OpenAIOptions(base_url="u", api_key_env="LM_TEST_KEY")) == "sk-1"


TEXTS = ["The quick brown fox jumps over the lazy dog. " * 3, "Pack my box with five dozen liquor jugs. " * 2,
         "How vexingly quick daft zebras jump!"]


def _results(folder):
    (run,) = [p for p in (folder / "results" / "t").iterdir() if (p / "results.json").exists()]
    return json.loads((run / "results.json").read_text())


def test_a_run_from_yaml_stops_on_garbage_keeps_its_work_and_resumes_to_the_same_numbers(
        tmp_path, tiny_model_dir, capsys):
    fake = Fake(pieces=False)
    try:
        models = [{"name": "served", "path": str(tiny_model_dir), "backend": "openai",
                   "openai": {"base_url": fake.url, "concurrency": 1, "max_retries": 0}}]
        ev = {"window": 16, "stride": 8, "batch_size": 1, "compressors": []}
        (tmp_path / "whole").mkdir()
        whole = write_config(tmp_path / "whole", models, TEXTS, eval=ev)
        assert main(["run", str(whole), "--quiet"]) == 0
        expected = [d["nll"] for d in _results(tmp_path / "whole")["results"][0]["per_document"]]
        cut = write_config(tmp_path, models, TEXTS, eval=ev)
        stop_after = fake.requests + 5 + 8  # the probe's requests, then 8 windows; then too few log-probs
        orig = fake.answer

        def spoiled(body):
            fake.garbage = "few" if fake.requests > stop_after else None
            return orig(body)
        fake.answer = spoiled
        assert main(["run", str(cut), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "log-probs for the" in err and "documents are checkpointed in" in err and "resume with:" in err
        fake.answer = orig
        fake.garbage = None
        assert main(["run", str(cut), "--quiet"]) == 0  # the same command resumes
        got = [d["nll"] for d in _results(tmp_path)["results"][0]["per_document"]]
        assert got == expected
    finally:
        fake.close()


def test_the_no_yaml_command_line_reaches_the_server(tmp_path, tiny_model_dir, fake):
    fake.pieces = False
    data = tmp_path / "notes.txt"
    data.write_text("\n".join(TEXTS))
    out = tmp_path / "out"
    assert main(["run", "--model", str(tiny_model_dir), "--data", str(data), "--backend", "openai", "--base-url",
                 fake.url, "--window", "16", "--out", str(out), "--quiet", "eval.compressors=[]"]) == 0
    (res,) = out.glob("*/*/results.json")
    row = json.loads(res.read_text())
    assert row["models"][0]["source"]["server"] == fake.url and row["models"][0]["device"] == "remote"
    assert row["results"][0]["metrics"]["tokens"] > 0 and fake.requests > 5
