"""A window longer than the model's context is clamped, keeping the overlap fraction; the run records what ran."""

from lm_eval_it.engine.prepare import token_window


def test_token_window_clamping_keeps_overlap():
    for w, s, mp in ((4096, 2048, 512), (1000, 1, 100), (1000, 999, 7), (3, 3, 2), (1024, 1024, 1000)):
        W, S, _ = token_window(w, s, "tokens", 1.0, mp, False, "m")
        assert W == min(w, mp) and 1 <= S <= W
        if w > mp:
            assert S == max(1, min(W, round(s * W / w))), (w, s, mp, W, S)


def test_clamped_window_keeps_the_overlap_fraction_and_records_both():
    window, stride, note = token_window(4096, 2048, "bytes", 4.2, 512, False, "m")
    assert (window, stride) == (512, 256)
    assert "stride 488 scaled to 256" in note and "window clamped to 512" in note


def test_clamp_is_recorded_per_model(run_config, tiny_model_dir):
    res = run(run_config, tiny_model_dir, ["The cat sat on the mat. " * 60], window=1024, stride=512)
    ev = res["results"][0]["eval"]
    assert (ev["window"], ev["stride"], ev["configured_window"], ev["configured_stride"]) == (512, 256, 1024, 512)


def test_bos_every_window_records_what_ran(run_config, tiny_model_dir):
    res = run(run_config, tiny_model_dir, ["The cat sat on the mat. " * 10], prefix="bos_every_window")
    ev = res["results"][0]["eval"]
    # 16 positions per forward pass: BOS + 15 text tokens; each later window advances 15 targets
    assert (ev["window"], ev["stride"], ev["text_tokens_per_window"]) == (16, 15, 15)


def run(run_config, model_dir, texts, name="r", **ev):
    """The tiny model on ``texts``: 16-token windows, no overlap, batches of 2; the parsed results.json."""
    return run_config({"tiny": model_dir}, texts, name=name, output={"plots": False},
                      eval={"window": 16, "stride": 16, "batch_size": 2, "device": "cpu", **ev}).results
