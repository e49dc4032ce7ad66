"""NLL by context length: hand-computed bins and sums, linearised t intervals against brute force."""

import math

import numpy as np
import pytest

from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.stats.context.bins import (
    MIN_BIN_TOKENS,
    bin_coverage,
    bin_edges,
    bin_index,
    doc_stats,
    first_window_rows,
    information_gain,
    observed_coverage,
    observed_range,
    summarize_context,
    window_context_lengths,
)
from lm_eval_it.stats.student_t import t_quantile

LN2 = math.log(2)


def test_bin_edges_and_index():
    assert bin_edges(1).tolist() == [1, 2]
    assert bin_edges(7).tolist() == [1, 2, 4, 8]
    assert bin_edges(1024).tolist() == [2 ** i for i in range(12)]   # 1024 alone in [1024, 2048)
    assert bin_edges(1000)[-1] == 1024
    e = bin_edges(1024)
    assert bin_index([1, 2, 3, 63, 64, 127, 128, 1023, 1024], e).tolist() == [0, 1, 1, 5, 6, 6, 7, 9, 10]
    with pytest.raises(ValueError):
        bin_index([0], e)
    with pytest.raises(ValueError):
        bin_index([2048], e)
    with pytest.raises(ValueError):
        bin_edges(0)


def test_window_context_lengths_follow_the_plan():
    plan = plan_windows(n=11, window=4, stride=2)    # 10 targets
    lengths = np.concatenate([window_context_lengths(w.score_from, w.length) for w in plan])
    assert lengths.size == 10
    assert lengths.tolist() == [1, 2, 3, 4, 3, 4, 3, 4, 3, 4]
    lo, hi = observed_range(4, 2)
    assert (lo, hi) == (3, 4) and lengths[4:].min() == lo
    assert window_context_lengths(2, 4, prefix=1).tolist() == [4, 5]


def test_doc_stats_hand_computed():
    e = bin_edges(4)                                  # bins [1,2) [2,4) [4,8)
    nll = np.array([3.0, 2.0, 1.0, 0.5, 0.25], dtype=np.float32)
    lengths = [1, 2, 3, 4, 4]
    nbytes = [1, 2, 3, 4, 5]
    s = doc_stats(nll, lengths, nbytes, e)
    assert s.tolist() == [[3.0, 1.0, 1.0], [3.0, 2.0, 5.0], [0.75, 2.0, 9.0]]
    assert s.dtype == np.float64
    with pytest.raises(ValueError):
        doc_stats(nll, lengths[:4], nbytes, e)


def test_coverage_marks_bins_only_first_windows_reach():
    e = bin_edges(1024)
    cov = bin_coverage(e, 1024, 512)                  # observed 513..1024
    assert cov[:9] == ["first_window_only"] * 9      # up to [256, 512)
    assert cov[9:] == ["partial", "steady"]          # [512, 1024) has 512 itself; [1024] steady
    assert set(bin_coverage(e, 1024, 1024)) == {"steady"}  # stride = window: every length recurs
    assert observed_range(1024, 1) == (1024, 1024)
    with pytest.raises(ValueError):
        observed_range(8, 9)


def test_summarize_sums_then_divides():
    e = bin_edges(2)                                  # bins [1,2) [2,4)
    a = np.array([[[2 * LN2, 1, 2], [6 * LN2, 3, 6]],
                  [[4 * LN2, 1, 4], [0.0, 0, 0]]])   # doc 2 has nothing in bin 1
    out = summarize_context(a, e, window=2, stride=1, after=[0, 2], after_range=(2, 2))
    b0, b1 = out["bins"]
    assert b0["bits_per_token"] == pytest.approx(3.0) and b0["bits_per_byte"] == pytest.approx(1.0)
    assert b1["bits_per_token"] == pytest.approx(2.0) and b1["bits_per_byte"] == pytest.approx(1.0)
    assert (b0["tokens"], b0["bytes"], b0["docs"], b1["docs"]) == (2, 6, 2, 1)
    assert (b0["lo"], b0["hi"], b1["lo"], b1["hi"]) == (1, 1, 2, 2)
    assert b0["coverage"] == "first_window_only" and b1["coverage"] == "steady"
    assert (b0["tokens_first_window"], b0["tokens_after_first_window"]) == (2, 0)
    assert (b1["tokens_first_window"], b1["tokens_after_first_window"]) == (1, 2)
    assert out["tokens_after_first_window"] == 2 and out["after_first_window_range"] == [2, 2]
    assert out["gains"][0]["bits_per_token"] == pytest.approx(1.0)
    assert out["observed_range"] == (2, 2)
    # without the counts nothing is assumed from window and stride
    blind = summarize_context(a, e, window=2, stride=1)["bins"]
    assert [b["coverage"] for b in blind] == [None, None] and blind[0]["tokens_after_first_window"] is None


def random_docs(d=30, nb=5, seed=0):
    rng = np.random.default_rng(seed)
    tok = rng.integers(1, 40, size=(d, nb)).astype(np.float64)
    nll = tok * (rng.uniform(1.0, 3.0, size=(d, nb)) - 0.2 * np.arange(nb))
    byt = tok * rng.uniform(3.0, 5.0, size=(d, nb))
    return np.stack([nll, tok, byt], axis=2), bin_edges(2 ** (nb - 1))


def brute_t(num_parts, sizes, estimate, total):
    """Linearised t interval by brute force: residual influences, K = M diag(sizes²) Mᵀ built as a dense matrix."""
    x = np.asarray(sizes, dtype=np.float64)
    m = np.eye(x.size) - np.outer(x / x.sum(), np.ones(x.size))
    k = m @ np.diag(x * x) @ m.T
    scale, df = (x * x).sum() / np.trace(k), np.trace(k) ** 2 / np.trace(k @ k)
    se = math.sqrt(scale * (num_parts ** 2).sum()) / total
    q = t_quantile(0.975, df)
    return [(estimate - q * se) / LN2, (estimate + q * se) / LN2], se / LN2, df


def brute_ratio(num, den):
    keep = (num != 0) | (den != 0)
    num, den = num[keep], den[keep]
    r = num.sum() / den.sum()
    return brute_t(num - r * den, den, r, den.sum())


def brute_gain(n_a, t_a, n_b, t_b):
    keep = (n_a != 0) | (t_a != 0) | (n_b != 0) | (t_b != 0)
    n_a, t_a, n_b, t_b = n_a[keep], t_a[keep], n_b[keep], t_b[keep]
    ra, rb = n_a.sum() / t_a.sum(), n_b.sum() / t_b.sum()
    x = (t_a + t_b) / 2
    z = ((n_a - ra * t_a) / t_a.sum() - (n_b - rb * t_b) / t_b.sum()) * x.sum()
    return brute_t(z, x, ra - rb, x.sum())


@pytest.mark.float64_reference
def test_intervals_match_brute_force_linearised_t():
    a, e = random_docs()
    a[:4, 3] = 0.0                                    # four documents score nothing in bin 3: they drop out of it
    out = summarize_context(a, e)
    assert out["method"] == "linearised_t" and out["resamples"] == 0
    for b, row in enumerate(out["bins"]):
        iv, se, df = brute_ratio(a[:, b, 0], a[:, b, 1])
        assert row["bits_per_token_interval"] == pytest.approx(iv, rel=1e-10)
        assert (row["se"]["bits_per_token"], row["df"]["bits_per_token"]) == pytest.approx((se, df), rel=1e-10)
        iv, se, df = brute_ratio(a[:, b, 0], a[:, b, 2])
        assert row["bits_per_byte_interval"] == pytest.approx(iv, rel=1e-10)
        assert row["se"]["bits_per_byte"] == pytest.approx(se, rel=1e-10)
    assert out["bins"][3]["docs"] == 26 and out["bins"][3]["df"]["bits_per_token"] < 26
    for b, g in enumerate(out["gains"]):
        iv, se, df = brute_gain(a[:, b, 0], a[:, b, 1], a[:, b + 1, 0], a[:, b + 1, 1])
        assert g["interval"] == pytest.approx(iv, rel=1e-10) and (g["se"], g["df"]) == pytest.approx((se, df))
        assert g["interval"][0] < g["bits_per_token"] < g["interval"][1]
    g = information_gain(a, e, lo=1, hi=2)
    assert g["interval"] == pytest.approx(out["gains"][0]["interval"], rel=1e-12)
    assert g["gain"] == pytest.approx(out["gains"][0]["bits_per_token"], rel=1e-12)
    assert g["method"] == "linearised_t" and g["documents"] == 30 and g["few_documents"] is False


def test_gain_sign_is_shorter_minus_longer():
    e = bin_edges(2)                                  # bins [1,2) [2,4): the longer context costs 1 bit less
    a = np.array([[[3 * LN2, 1, 1], [2 * LN2, 1, 1]], [[4 * LN2, 1, 1], [3 * LN2, 1, 1]],
                  [[5 * LN2, 1, 1], [3.5 * LN2, 1, 1]]])
    g = information_gain(a, e, lo=1, hi=2)
    assert g["gain"] == pytest.approx(4 - 8.5 / 3) and g["gain"] > 0   # 4 bits/token at 1 token, 2.83 at 2
    assert g["interval"][0] < g["gain"] < g["interval"][1]


def test_bin_with_few_documents_is_not_certain():
    """One document scoring a bin gives no interval; two or three give a wide t interval, flagged few_documents
    (the bootstrap printed 11.9953–11.9953 for a bin only one document reached)."""
    e = bin_edges(2)
    rng = np.random.default_rng(4)
    a = np.zeros((12, 2, 3))
    a[:, 0] = np.stack([rng.uniform(2, 3, 12) * 40, np.full(12, 40.0), np.full(12, 160.0)], axis=1)
    a[0, 1] = (11.9953 * LN2 * 30, 30, 120)           # only document 0 reaches bin 1
    out = summarize_context(a, e)
    one = out["bins"][1]
    assert one["docs"] == 1 and one["bits_per_token_interval"] is None and one["few_documents"] is True
    assert out["gains"][0]["interval"] is not None and out["gains"][0]["few_documents"] is False
    a[1, 1] = (12.2 * LN2 * 30, 30, 120)               # a second and a third document
    a[2, 1] = (11.7 * LN2 * 20, 20, 80)
    two = summarize_context(a, e)["bins"][1]
    lo, hi = two["bits_per_token_interval"]
    assert two["few_documents"] is True and two["df"]["bits_per_token"] < 2
    assert hi - lo > 1.0 and lo < 11.7 and hi > 12.2


def test_intervals_are_deterministic():
    a, e = random_docs(seed=1)
    assert summarize_context(a, e) == summarize_context(a, e)


def test_information_gain_between_far_lengths():
    a, e = random_docs(nb=11)                         # edges up to 2048
    g = information_gain(a, e, lo=64, hi=1024)
    tot = a.sum(axis=0)
    expect = tot[6, 0] / tot[6, 1] / LN2 - tot[10, 0] / tot[10, 1] / LN2
    assert (g["lo_bin"], g["hi_bin"]) == (6, 10)
    assert g["gain"] == pytest.approx(expect, rel=1e-12)
    assert g["interval"][0] < g["gain"] < g["interval"][1]


def test_one_document_and_empty_bins():
    e = bin_edges(2)
    a = np.array([[[LN2, 1, 1], [0.0, 0, 0]]])
    out = summarize_context(a, e)
    assert out["resamples"] == 0 and out["bins"][0]["bits_per_token_interval"] is None
    assert math.isnan(out["bins"][1]["bits_per_token"]) and math.isnan(out["gains"][0]["bits_per_token"])
    two = np.concatenate([a, a])
    out = summarize_context(two, e)
    assert out["bins"][1]["bits_per_token_interval"] is None and out["gains"][0]["interval"] is None
    with pytest.raises(ValueError):
        summarize_context(np.zeros((2, 3)), e)


# ----------------------------------------------------------------------------- coverage from the windows that ran

def test_first_window_rows_follow_the_plan():
    for prefix in (0, 1):                            # 1: a prefix token in front of every later window
        plan = plan_windows(n=40, window=12, stride=5)
        first, later = [], []
        for k, w in enumerate(plan):
            pos = np.arange(w.start + w.score_from, w.start + w.length)   # index of the target among the targets
            ctx = window_context_lengths(w.score_from, w.length, prefix=prefix if w.start > 0 else 0)
            # the whole document was seen when the window starts at 0, or at 1 behind a prefix (S[0] is the prefix)
            whole = w.start == 0 or (prefix and w.start == 1)
            (first if whole else later).append(first_window_rows(pos, ctx))
        assert all(f.all() for f in first) and not any(x.any() for x in later) and len(later) == len(plan) - 1


def test_observed_coverage_hand_cases():
    e = bin_edges(8)                                  # [1] [2,3] [4..7] [8]
    assert observed_coverage(e, 8, 4, [1, 2, 4, 1], [0, 0, 0, 0]) == ["first_window_only"] * 4
    assert observed_coverage(e, 8, 4, [1, 2, 4, 1], [0, 0, 6, 2]) == ["first_window_only"] * 2 + ["partial",
                                                                                                  "steady"]
    assert observed_coverage(e, 8, 8, [1, 2, 4, 0], [1, 2, 0, 0]) == ["steady", "steady", "first_window_only", None]


def _docs_of(tokenizer, lengths: list[int]) -> list[str]:
    """Texts that the tokenizer cuts into exactly the given numbers of tokens (cut from the test corpus)."""
    from conftest import corpus

    texts, pool = [], iter(t for t in corpus() if len(t) > 2000)
    for n in lengths:
        while True:
            ids = tokenizer(next(pool), add_special_tokens=False)["input_ids"]
            text = tokenizer.decode(ids[:n])
            if len(tokenizer(text, add_special_tokens=False)["input_ids"]) == n:
                texts.append(text)
                break
    return texts


def _run(tmp_path, model_dir, texts, window, stride, prefix="auto"):
    import json

    from lm_eval_it.cli import main

    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert main(["run", "--model", str(model_dir), "--data", str(tmp_path / "d.jsonl"), "--window", str(window),
                 "--stride", str(stride), "--out", str(tmp_path / "res"), "--name", "c", "--quiet",
                 f"eval.prefix={prefix}"]) == 0
    (folder,) = (tmp_path / "res" / "c").iterdir()
    return folder, json.loads((folder / "results.json").read_text())["results"][0]


def test_coverage_says_first_window_only_when_no_document_has_a_second_window(tmp_path, tiny, tiny_model_dir):
    lengths = [101, 104, 107, 110, 113, 116, 119, 122, 125, 128, 131, 135]  # 12 documents of 101–135 tokens
    folder, row = _run(tmp_path, tiny_model_dir, _docs_of(tiny[1], lengths), window=136, stride=100)
    assert [d["tokens"] for d in row["per_document"]] == lengths and row["eval"]["windows"] == 12
    cl = row["context_length"]
    by = {(b["lo"], b["hi"]): b for b in cl["bins"]}
    # each document scores lengths 1..n in its one window: the counts per bin, by hand
    assert by[(64, 127)]["tokens"] == sum(min(n, 127) - 63 for n in lengths)
    assert by[(128, 136)]["tokens"] == sum(max(0, n - 127) for n in lengths) == 1 + 4 + 8
    assert [b["coverage"] for b in cl["bins"]] == ["first_window_only"] * 8   # 64–127 and 128–136 too
    for b in cl["bins"]:
        assert (b["tokens_first_window"], b["tokens_after_first_window"]) == (b["tokens"], 0)
    assert cl["tokens_after_first_window"] == 0 and cl["after_first_window_range"] is None
    md = (folder / "summary.md").read_text()
    assert "No document had a second window" in md and "37–136" not in md
    assert "| 64–127 | first window only | 12 |" in md and "| 128–136 | first window only | 3 | 13 (few) |" in md


@pytest.mark.parametrize("prefix", ["auto", "bos_every_window"])
def test_first_and_later_window_counts_match_the_plan(tmp_path, tiny, tiny_model_dir, prefix):
    lengths = [5, 23, 24, 25, 40, 61, 97]
    window, stride = 24, 10
    folder, row = _run(tmp_path, tiny_model_dir, _docs_of(tiny[1], lengths), window, stride, prefix)
    every = prefix == "bos_every_window"
    e = bin_edges(window)
    first, after, seen = np.zeros(len(e) - 1, int), np.zeros(len(e) - 1, int), []
    for n in lengths:                                 # brute force over the planned windows (BOS prefix: n + 1 ids)
        for w in plan_windows(n + 1, window - every, min(stride, window - every)):
            ctx = window_context_lengths(w.score_from, w.length, prefix=int(every and w.start > 0))
            whole = w.start == 0 or (every and w.start == 1)
            np.add.at(first if whole else after, bin_index(ctx, e), 1)
            seen += [] if whole else ctx.tolist()
    cl = row["context_length"]
    assert [b["tokens_first_window"] for b in cl["bins"]] == first.tolist()
    assert [b["tokens_after_first_window"] for b in cl["bins"]] == after.tolist()
    assert cl["tokens_after_first_window"] == after.sum() > 0
    assert cl["after_first_window_range"] == [min(seen), max(seen)]
    assert [b["coverage"] for b in cl["bins"]] == observed_coverage(e, window, stride, first, after)
    assert [b["coverage"] for b in cl["bins"]][-2:] == ["partial", "steady"]  # 8–15: only 15 recurs; 16–24 all
    assert [b["below_min_tokens"] for b in cl["bins"]] == [t < MIN_BIN_TOKENS for t in first + after]
    lo, hi = cl["after_first_window_range"]
    assert f"were scored, with context lengths {lo}–{hi}" in (folder / "summary.md").read_text()


def test_no_coverage_is_claimed_when_the_first_window_counts_are_incomplete():
    from lm_eval_it.report.sections import context_note
    from lm_eval_it.stats.context.statistic import ContextStats

    stat = ContextStats(window=4, stride=2)
    per_doc = np.array([[[LN2, 1, 1], [2 * LN2, 2, 2], [3 * LN2, 3, 3]]])   # 6 tokens scored
    partial = np.zeros(6, np.int64)
    partial[[0, 1, 2 + 3]] = [1, 2, 1]                                       # only 4 of them split (old checkpoint)
    ext = {"after_lo": (3.0, 2.0 ** 40), "after_hi": (0.0, 4.0)}
    out = stat.summarize({"windows": partial}, {"per_document": {"bins": per_doc}, "extremes": ext})
    assert [b["coverage"] for b in out["bins"]] == [None] * 3 and out["tokens_after_first_window"] is None
    assert "No document had a second window" not in context_note({"context_length": out})
    full = partial.copy()
    full[2 + 3] = 3                                                          # bin [4, 8): 3 after the first window
    out = stat.summarize({"windows": full}, {"per_document": {"bins": per_doc}, "extremes": ext})
    assert [b["coverage"] for b in out["bins"]] == ["first_window_only", "first_window_only", "steady"]
    assert out["after_first_window_range"] == [3, 4] and out["tokens_after_first_window"] == 3
