"""Scored bytes, chars and words per document: tricky Unicode, byte-level and SentencePiece tokenizers,
prefix 'auto' and 'none', against brute-force counts and the documents' UTF-8 bytes."""

from __future__ import annotations

import pytest
from conftest import byte_level_tokenizer, corpus, tiny_llama

from lm_eval_it.engine.prepare import scored_counts

TRICKY = ["Hello world", " leading spaces  ", "emoji 👩\u200d👩\u200d👧 ok 🎉", "日本語のテキスト、中文",
          "e\u0301 combining a\u0308", "crlf\r\nline\r\n", "nul\x00byte", "\ttab\u00a0nbsp\u2028 x",
          "ĠĠ literal Ġ", "é plain"]


def _sp_tokenizer():
    """A Llama-style SentencePiece-like tokenizer: ▁ for spaces, a dummy-prefix ▁, byte fallback."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(byte_fallback=True))
    tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                    decoders.Strip(" ", 1, 0)])
    tr = trainers.BpeTrainer(vocab_size=600, special_tokens=["<unk>", "<s>", "</s>"] +
                             [f"<0x{i:02X}>" for i in range(256)], show_progress=False)
    tk.train_from_iterator(corpus()[:20], tr)
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_byte_level_token_bytes_sum_to_utf8_bytes():
    from lm_eval_it.backends.tokenizer import encode, token_byte_lengths

    tok = byte_level_tokenizer()
    table = token_byte_lengths(tok)
    for text, ids in zip(TRICKY, encode(tok, TRICKY)):
        assert tok.decode(ids) == text
        assert int(table[ids].sum()) == len(text.encode("utf-8")), text


def _prepare(tok, texts, prefix, tmp_path):
    from types import SimpleNamespace

    from lm_eval_it.engine.prepare import prepare

    ev = SimpleNamespace(prefix=prefix, window=16, stride=16, window_unit="tokens", strict_window=False)
    return prepare(tok, texts, "t", f"adv-{prefix}-{id(tok)}", tmp_path, ev, 512, "m")


def test_sentencepiece_target_bytes_sum_to_document_bytes(tmp_path):
    """Every text token is scored with prefix 'auto', so the bytes of the scored targets (what the context
    bins divide by) must add up to the document's UTF-8 bytes. The dummy-prefix ▁ of the first token is
    counted as a byte of text: one phantom byte per document, all of it in context bin 0."""
    from lm_eval_it.backends.hf.scorer import Scorer
    from lm_eval_it.engine.execute import Executor
    from lm_eval_it.engine.reduce import Reduction
    from lm_eval_it.stats.context.statistic import ContextStats

    tok = _sp_tokenizer()
    p = _prepare(tok, TRICKY, "auto", tmp_path)
    for d, text in enumerate(TRICKY):
        ids = p.store.read(d, 0, p.store.length(d))
        assert tok.decode(ids.tolist()) == text
        assert int(p.bytes[d]) == len(text.encode()), text
    # the bytes the context bins divide by: summed over every scored target, per document
    stat = ContextStats(16, 16)
    ex = Executor(p, Scorer(tiny_llama(len(tok)), "cpu"), [stat], 4)
    red = Reduction(ex.layout, p)
    for r in ex.run():
        red.add(r)
    per_doc = red.per_doc_arrays("context.bins", sorted(red.rows))
    assert per_doc[:, :, 2].sum(axis=1).astype(int).tolist() == [len(t.encode()) for t in TRICKY]


def test_prefix_none_scored_bytes_are_the_scored_tokens_bytes(tmp_path):
    """With prefix none the reported bytes must be the UTF-8 bytes the scored tokens (ids[1:]) decode to."""
    for tok in (byte_level_tokenizer(), _sp_tokenizer()):
        p = _prepare(tok, TRICKY, "none", tmp_path)
        for d, text in enumerate(TRICKY):
            ids = p.store.read(d, 0, p.store.length(d)).tolist()
            first = tok.decode(ids[:1])
            # bytes decoded by the scored tokens: total minus what the first token alone decodes to
            whole = len(text.encode())
            ref = whole - len(tok.decode(ids[:1]).encode()) if tok.decode(ids[:1]) and \
                text.encode().startswith(first.encode()) else None
            if ref is not None:
                assert int(p.bytes[d]) == ref, (text, first)


def _brute_scored(text: str, skip: int):
    import re

    starts, pos = [], 0
    for ch in text:  # byte offset of each char
        starts.append(pos); pos += len(ch.encode())
    chars = sum(1 for s in starts if s >= skip)
    pieces = [0] + [m.end() for m in re.finditer(r"\s+", text)]
    byte_at = lambda c: len(text[:c].encode())  # noqa: E731
    words = sum(1 for c in pieces if byte_at(c) >= skip and (c > 0 or skip == 0))
    return max(len(text.encode()) - skip, 0), chars, words


@pytest.mark.float64_reference
def test_scored_counts_brute_force():
    for text in TRICKY + ["a b", "  ", "x", "日 本"]:
        for skip in range(0, len(text.encode()) + 1):
            assert scored_counts(text, skip) == _brute_scored(text, skip), (text, skip)


def test_prefix_none_counts_only_wholly_scored_bytes_chars_and_words(run_config, tiny_model_dir, tiny):
    _, tok = tiny
    texts = ["日本語のテキスト", "🙂 smile", "a", "Hello world again"]
    first = [tok.convert_ids_to_tokens(tok(t, add_special_tokens=False)["input_ids"][0]) for t in texts]
    # the byte-level tokenizer was trained on English: the first token of the Japanese text and of the emoji is
    # one byte, which ends in the middle of a character
    assert [len(f) for f in first[:2]] == [1, 1]
    res = run(run_config, tiny_model_dir, texts, prefix="none")
    rows = res["results"][0]["per_document"]
    assert [(r["bytes"], r["chars"], r["words"]) for r in rows[:3]] == [(23, 7, 0), (9, 6, 1), (0, 0, 0)]
    assert rows[2]["tokens"] == 0
    k = len(first[3])
    assert (rows[3]["bytes"], rows[3]["chars"], rows[3]["words"]) == scored_counts(texts[3], k)
    auto = run(run_config, tiny_model_dir, texts, name="auto")["results"][0]["per_document"]
    assert [(r["bytes"], r["chars"], r["words"]) for r in auto] == [(24, 8, 1), (10, 7, 2), (1, 1, 1), (17, 17, 3)]


def test_prefix_none_word_count_drops_over_pydoc(run_config, tiny_model_dir):
    texts = corpus()[:10]
    none = run(run_config, tiny_model_dir, texts, name="none", prefix="none")["results"][0]["metrics"]
    auto = run(run_config, tiny_model_dir, texts, name="auto")["results"][0]["metrics"]
    assert none["words"] < auto["words"] and none["bytes"] < auto["bytes"] and none["tokens"] == auto["tokens"] - 10


def run(run_config, model_dir, texts, name="r", **ev):
    """The tiny model on ``texts``: 16-token windows, no overlap, batches of 2; the parsed results.json."""
    return run_config({"tiny": model_dir}, texts, name=name, output={"plots": False},
                      eval={"window": 16, "stride": 16, "batch_size": 2, "device": "cpu", **ev}).results
