"""Prepare: token ids through the cache, the protocol that ran, a plan that scores every counted token once."""

import numpy as np
import pytest

from lm_eval_it.backends.tokenizer import encode, token_byte_lengths
from lm_eval_it.config.schema import EvalConfig
from lm_eval_it.engine import prepare as prepare_module
from lm_eval_it.engine.prepare import min_context, prepare
from lm_eval_it.errors import UserError

TEXTS = ["The quick brown fox jumps over the lazy dog. " * 6, "x", "Zwölf Boxkämpfer jagen Viktor quer über den Sylter "
         "Deich; 日本語のテキスト.", "a b  c\td\n" * 9]


def run(tok, tmp_path, texts=TEXTS, key="tok:data", **ev):
    return prepare(tok, iter(texts), "d", key, tmp_path / "tokens", EvalConfig(**{"window": 16, "stride": 8, **ev}),
                   64, "tiny", compressors=["gzip"])


def ids_of(p):
    return [p.store.read(d, 0, p.store.length(d)).tolist() for d in range(len(p.targets))]


def test_a_cache_hit_gives_identical_ids_counts_and_plan(tiny, tmp_path, monkeypatch):
    _, tok = tiny
    first = run(tok, tmp_path)
    assert ids_of(first) == [list(x) for x in encode(tok, TEXTS)]

    def no_encoding(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(prepare_module, "encode", no_encoding)
    again = run(tok, tmp_path)
    assert ids_of(again) == ids_of(first)
    for k in ("targets", "bytes", "chars", "words", "zlib_bits", "first_excess"):
        assert getattr(again, k).tolist() == getattr(first, k).tolist()
    for c in ("doc", "index", "start", "length", "score_from"):
        assert getattr(again.plan, c).tobytes() == getattr(first.plan, c).tobytes()
    assert again.heads == first.heads and again.protocol == first.protocol and again.compression == first.compression


def test_a_cache_entry_for_other_documents_is_refused(tiny, tmp_path):
    _, tok = tiny
    run(tok, tmp_path)
    with pytest.raises(UserError, match="does not match dataset 'd'; delete it"):
        run(tok, tmp_path, texts=TEXTS[:3])


def test_the_protocol_records_what_ran(tiny, tmp_path):
    _, tok = tiny
    p = run(tok, tmp_path)
    assert (p.protocol.window, p.protocol.stride, p.protocol.plan_window) == (16, 8, 16)
    assert p.protocol.prefix_id == tok.bos_token_id and p.protocol.prefix == "bos:<s>" and not p.protocol.every_window
    every = run(tok, tmp_path, prefix="bos_every_window").protocol
    assert (every.window, every.stride, every.plan_window, every.every_window) == (16, 8, 15, True)
    clamped = run(tok, tmp_path, window=128, stride=64)
    assert (clamped.protocol.window, clamped.protocol.stride) == (64, 32)  # the model's 64 positions, same overlap
    assert clamped.notes and "clamped to 64" in clamped.notes[0]
    assert (clamped.protocol.configured_window, clamped.protocol.configured_stride) == (128, 64)


def test_plan_columns_sum_to_the_scored_tokens(tiny, tmp_path):
    _, tok = tiny
    for prefix in ("auto", "none", "bos_every_window"):
        p = run(tok, tmp_path, prefix=prefix)
        lengths = np.array([len(x) for x in ids_of(p)])
        want = lengths if prefix != "none" else np.maximum(lengths - 1, 0)
        assert p.targets.tolist() == want.tolist()
        per_doc = np.bincount(p.plan.doc, weights=p.plan.scored, minlength=len(TEXTS)).astype(np.int64)
        assert per_doc.tolist() == p.targets.tolist()
        assert (p.plan.length <= p.protocol.plan_window).all() and (p.plan.score_from < p.plan.length).all()


def test_with_a_prefix_every_byte_is_counted_and_without_the_first_token_is_context(tiny, tmp_path):
    _, tok = tiny
    with_prefix = run(tok, tmp_path)
    assert with_prefix.bytes.tolist() == [len(t.encode()) for t in TEXTS]
    assert with_prefix.chars.tolist() == [len(t) for t in TEXTS]
    none = run(tok, tmp_path, prefix="none")
    table = token_byte_lengths(tok)
    first = [int(table[ids[0]]) if len(ids) > 1 else len(t.encode()) for ids, t in zip(ids_of(none), TEXTS)]
    assert none.bytes.tolist() == [len(t.encode()) - f for t, f in zip(TEXTS, first)]
    assert none.bytes[1] == 0 and none.targets[1] == 0  # one token and no prefix: nothing scored


def test_the_sequence_puts_the_prefix_in_front(tiny, tmp_path):
    _, tok = tiny
    p = run(tok, tmp_path)
    ids = ids_of(p)[0]
    assert p.sequence(0, 0, 4).tolist() == [tok.bos_token_id] + ids[:3]
    assert p.sequence(0, 5, 9).tolist() == ids[4:8]


def test_min_context_counts_a_per_window_prefix(tiny, tmp_path):
    _, tok = tiny
    plain, every = run(tok, tmp_path), run(tok, tmp_path, prefix="bos_every_window")
    assert min_context(plain.plan, False) == 1  # the first token of a document sees only the prefix
    assert min_context(every.plan, True) == 1
    later = every.plan.start > 0
    assert int((every.plan.score_from[later] + 2).min()) == 16 - 8 + 1  # overlap + the prefix


def test_whole_dataset_compression_and_no_lossy_documents(tiny, tmp_path):
    _, tok = tiny
    p = run(tok, tmp_path)
    assert p.compression["bytes_in"] == sum(len(t.encode()) for t in TEXTS)
    assert set(p.compression["compressed_bytes"]) == {"gzip"}
    assert p.roundtrip == {"lossy_documents": 0, "lossy_bytes": 0, "sample": None, "inserted_bytes": 0,
                           "deleted_bytes": 0}
    assert p.heads == [t[:200] for t in TEXTS]
