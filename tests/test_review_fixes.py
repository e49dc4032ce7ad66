"""Regression tests for the review's defects (#11 cases 3–8) on the streaming core."""

import json
import math

import numpy as np
import pytest
import torch
import yaml
from conftest import corpus

from lm_eval_it.cli import main
from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.engine.prepare import scored_counts, token_window
from lm_eval_it.errors import UserError


def run_cfg(tmp_path, model_dir, texts, name="r", **ev):
    data = tmp_path / f"{name}.jsonl"
    data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    cfg = {"models": [{"name": "tiny", "path": str(model_dir)}], "datasets": [{"name": "d", "path": str(data)}],
           "eval": {"window": 16, "stride": 16, "batch_size": 2, "device": "cpu", **ev},
           "output": {"dir": str(tmp_path / "results"), "run_name": name, "plots": False}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["run", str(path), "--quiet"]) == 0
    (folder,) = (tmp_path / "results" / name).iterdir()
    return json.loads((folder / "results.json").read_text())


def test_prefix_none_counts_only_wholly_scored_bytes_chars_and_words(tmp_path, tiny_model_dir, tiny):
    _, tok = tiny
    texts = ["日本語のテキスト", "🙂 smile", "a", "Hello world again"]
    first = [tok.convert_ids_to_tokens(tok(t, add_special_tokens=False)["input_ids"][0]) for t in texts]
    # the byte-level tokenizer was trained on English: the first token of the Japanese text and of the emoji is
    # one byte, which ends in the middle of a character
    assert [len(f) for f in first[:2]] == [1, 1]
    res = run_cfg(tmp_path, tiny_model_dir, texts, prefix="none")
    rows = res["results"][0]["per_document"]
    assert [(r["bytes"], r["chars"], r["words"]) for r in rows[:3]] == [(23, 7, 0), (9, 6, 1), (0, 0, 0)]
    assert rows[2]["tokens"] == 0
    k = len(first[3])
    assert (rows[3]["bytes"], rows[3]["chars"], rows[3]["words"]) == scored_counts(texts[3], k)
    auto = run_cfg(tmp_path, tiny_model_dir, texts, name="auto")["results"][0]["per_document"]
    assert [(r["bytes"], r["chars"], r["words"]) for r in auto] == [(24, 8, 1), (10, 7, 2), (1, 1, 1), (17, 17, 3)]


def test_prefix_none_word_count_drops_over_pydoc(tmp_path, tiny_model_dir):
    texts = corpus()[:10]
    none = run_cfg(tmp_path, tiny_model_dir, texts, name="none", prefix="none")["results"][0]["metrics"]
    auto = run_cfg(tmp_path, tiny_model_dir, texts, name="auto")["results"][0]["metrics"]
    assert none["words"] < auto["words"] and none["bytes"] < auto["bytes"] and none["tokens"] == auto["tokens"] - 10


def test_clamped_window_keeps_the_overlap_fraction_and_records_both():
    window, stride, note = token_window(4096, 2048, "bytes", 4.2, 512, False, "m")
    assert (window, stride) == (512, 256)
    assert "stride 488 scaled to 256" in note and "window clamped to 512" in note


def test_clamp_is_recorded_per_model(tmp_path, tiny_model_dir):
    res = run_cfg(tmp_path, tiny_model_dir, ["The cat sat on the mat. " * 60], window=1024, stride=512)
    ev = res["results"][0]["eval"]
    assert (ev["window"], ev["stride"], ev["configured_window"], ev["configured_stride"]) == (512, 256, 1024, 512)


def test_bos_every_window_records_what_ran(tmp_path, tiny_model_dir):
    res = run_cfg(tmp_path, tiny_model_dir, ["The cat sat on the mat. " * 10], prefix="bos_every_window")
    ev = res["results"][0]["eval"]
    # 16 positions per forward pass: BOS + 15 text tokens; each later window advances 15 targets
    assert (ev["window"], ev["stride"], ev["text_tokens_per_window"]) == (16, 15, 15)


def test_checkpoint_records_resolved_device_and_batch_size_and_replays_it(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"config": {"eval": {"device": "auto", "batch_size": "auto"}}, "device": "cpu"})
    assert ck.batch_size("m", "d", 7) == 7
    assert Checkpoint(tmp_path).batch_size("m", "d", 3) == 7  # a resume on other hardware replays 7
    lines = [json.loads(x) for x in (tmp_path / "checkpoint.jsonl").read_text().splitlines()]
    assert lines[0]["header"]["device"] == "cpu" and lines[1] == {"kind": "plan", "model": "m", "dataset": "d",
                                                                   "batch_size": 7}


def test_checkpoint_refuses_a_changed_tokenizer(tmp_path):
    ck = Checkpoint(tmp_path)
    ck.begin({"x": 1})
    ck.model("m", "weights-a", "tok-a")
    again = Checkpoint(tmp_path)
    again.model("m", "weights-a", "tok-a")
    with pytest.raises(UserError, match="model 'm' tokenizer changed"):
        Checkpoint(tmp_path).model("m", "weights-a", "tok-b")
    with pytest.raises(UserError, match="model 'm' weights changed"):
        Checkpoint(tmp_path).model("m", "weights-b", "tok-a")


def test_masked_vocabulary_gives_finite_sweep_and_kl(tiny):
    """-inf logits on part of the vocabulary: entropy, slopes and KL are finite and match float64 on the rest."""
    from lm_eval_it.backends.hf.scorer import Scorer
    from lm_eval_it.engine.execute import Executor
    from lm_eval_it.engine.prepare import from_sequences
    from lm_eval_it.engine.reduce import Reduction
    from lm_eval_it.engine.windows import plan_windows
    from lm_eval_it.stats.kl.statistic import KLStats
    from lm_eval_it.stats.temperature.sweep import TemperatureStats

    model, tok = tiny
    masked = list(range(300, len(tok)))
    ids = tok(corpus()[0][:300], add_special_tokens=False)["input_ids"]
    seq = [tok.bos_token_id] + [i for i in ids if i < 300]
    hook = model.lm_head.register_forward_hook(lambda m, i, o: o.index_fill(-1, torch.tensor(masked), -math.inf))
    try:
        scorer = Scorer(model, "cpu", reference=Scorer(model, "cpu"))
        prepared = from_sequences([seq], [plan_windows(len(seq), len(seq), len(seq))], vocab=scorer.vocab)
        sweep, kl = TemperatureStats([0.5, 1.0, 2.0], scorer.vocab), KLStats([1.0, 2.0])
        ex = Executor(prepared, scorer, [sweep, kl], 4)
        red = Reduction(ex.layout, prepared)
        for r in ex.run():
            red.add(r)
        with torch.no_grad():
            z = model(torch.tensor([seq])).logits[0, :-1].double()
    finally:
        hook.remove()
    totals = red.of(sweep)
    for key in ("entropy", "nll", "d1", "d2"):
        assert np.isfinite(totals[key]).all(), key
    y = torch.tensor(seq[1:])
    for k, t in enumerate([0.5, 1.0, 2.0]):
        zz = z[:, :300] / t
        p = torch.softmax(zz, -1)
        ent = -(p * torch.log_softmax(zz, -1)).sum().item()
        assert totals["entropy"][k] == pytest.approx(ent, rel=1e-4)
    kt = red.of(kl)
    assert np.isfinite(kt["fwd"]).all() and abs(kt["fwd"]).max() < 1e-3  # the same model twice: KL = 0
