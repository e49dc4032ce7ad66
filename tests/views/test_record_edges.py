"""The views' recording at its edges: documents without a scored token, special tokens spelled out in the text,
every flagged document beyond the budget, open documents within the budget, and cuts that keep tokens whole."""

import math
from types import SimpleNamespace as NS

import numpy as np

from lm_eval_it.config.schema import ViewsConfig
from lm_eval_it.stats.insights import memorisation_summary
from lm_eval_it.views.align import char_delta
from lm_eval_it.views.record import ViewRecorder
from lm_eval_it.views.select import aligned_pair
from lm_eval_it.views.store import DocView, ViewSet, load

LN2 = math.log(2.0)


def test_a_document_with_no_scored_token_does_not_crash_the_run(run_config, tiny_model_dir):
    """prefix none: a one-token document has no target; the recorder's _view builds start=[lead] but length=[]."""
    run = run_config({"tiny": tiny_model_dir}, ["Hello world, a document.", "x"], eval={"window": 48, "prefix": "none"})
    (row,) = run.results["results"]
    assert row["views"]["complete"]


def test_a_special_token_written_in_the_text_keeps_the_later_tokens_in_place(run_config, tiny_model_dir):
    """'</s>' in the text is one special id with byte length 0: every later token is drawn 4 bytes early."""
    text = "Before </s> after, and more words."
    run = run_config({"tiny": tiny_model_dir}, [text], eval={"window": 48})
    (row,) = run.results["results"]
    v = load(run.folder / row["views"]["file"]).docs[0]
    ends = v.start + v.length
    assert ends[-1] == len(text.encode()) and v.aligned  # the tokenizer reproduces the text (round trip: lossless)


def _prepared(n, t, zlib):
    return NS(bytes=np.full(n, t), zlib_bits=zlib, targets=np.full(n, t), roundtrip={"lossy_documents": 0},
              groups=None, protocol=NS(prefix_id=0), byte_table=np.ones(10, np.int32),
              first_excess=np.zeros(n, np.int64), sequence=lambda d, a, b: np.zeros(b - a, np.int32))


def _feed(rec, d, nll, start=0):
    n = len(nll)
    rec(NS(segments=[0], doc=np.full(n, d), position=np.arange(start, start + n), target_bytes=np.ones(n, np.int64),
           targets=np.zeros(n, np.int64),
           context=np.arange(n)), nll, {}, np.array([True]))


def test_every_flagged_document_is_recorded_beyond_the_budget():
    """12 documents with a very low zlib ratio: the memorisation block flags 10, the recorder keeps 8 (3 + SPARE)."""
    rng = np.random.default_rng(0)
    n, t = 60, 20
    texts = ["".join(rng.choice(list("abcdefgh"), t)) for _ in range(n)]
    nll = rng.gamma(4, 1, (n, t))
    zlib = np.full(n, 240.0)
    zlib[:12] = 24000.0
    rec = ViewRecorder(ViewsConfig(record_tokens=0, show=3), _prepared(n, t, zlib), texts, "m", "d")
    per_doc = []
    for d in rng.permutation(n):
        _feed(rec, int(d), nll[d])
        mk = float(-np.sort(nll[d])[-4:].mean())
        rec.finished(NS(doc=int(d), nll=float(nll[d].sum()), extra={"min_k_logprob": mk}))
        per_doc.append({"index": int(d), "nll": float(nll[d].sum()), "tokens": t, "min_k_logprob": mk})
    per_doc.sort(key=lambda r: r["index"])
    flagged = [f["doc"] for f in memorisation_summary(per_doc, zlib, texts, 20.0)["flagged"]]
    assert [d for d in flagged if d not in rec.viewset().docs] == []


def test_an_open_document_stays_within_the_token_budget():
    """One 200k-token document, budget 1,000 tokens: while 'whole', the open document is held entire."""
    t, w = 200_000, 512
    rec = ViewRecorder(ViewsConfig(record_tokens=1000, max_chars=100), _prepared(1, t, np.array([800.0])), ["a" * t],
                       "m", "d")
    peak = 0
    for a in range(0, t, w):
        _feed(rec, 0, np.ones(min(w, t - a)), a)
        peak = max(peak, sum(len(x["nll"]) for x in rec.open.get(0, [])))
    assert peak <= 1000 + w


def test_a_cut_pair_ends_where_both_models_end_a_token_so_no_token_is_drawn_in_part():
    """A: 'hello' ' world' (10 bits each); B: 2 bits per byte. A is cut at 7 characters ('hello w'): the pair is
    drawn over 'hello' only, where both tokenizations end, and Δ there is B's 10 bits − A's 10 bits = 0."""
    text = "hello world"
    a = DocView(0, text, np.array([0, 5]), np.array([5, 6]), np.array([10.0, 10.0]) * LN2, np.array([0, 1]))
    b = DocView(0, text, np.arange(11), np.ones(11, np.int64), np.full(11, 2.0) * LN2, np.arange(11))
    cut = DocView(0, text[:7], a.start, a.length, a.nll, a.context, cut=True)
    va, vb = aligned_pair(ViewSet("A", "d", {0: cut}, False, 1), ViewSet("B", "d", {0: b}, True, 1), 0)
    assert va.text == vb.text == "hello" and len(va.nll) == 1 and len(vb.nll) == 5
    delta = char_delta(va, vb)
    assert np.allclose(delta, [2 - 2] * 5, atol=1e-12)
    assert math.isclose(delta.sum(), vb.bits - va.bits, abs_tol=1e-12)
