"""The pure parts of compression: any bytes cut into text and escaped segments and joined back, the schedule of
lanes and windows, and the container's checks."""

import os

import numpy as np
import pytest
from conftest import byte_level_tokenizer

from lm_eval_it.backends.hf.tokenizer import HFTokenizer
from lm_eval_it.compress import container, segments
from lm_eval_it.compress.schedule import Schedule
from lm_eval_it.engine.windows import plan_windows
from lm_eval_it.errors import UserError

FILES = {
    "empty": b"",
    "one byte": b"a",
    "crlf": b"line one\r\nline two\r\n\r\n",
    "invalid utf-8": b"ok \xff\xfe then \xc3( and \xe2\x82 end",
    "binary": bytes(range(256)) * 3,
    "random": os.urandom(2000),
    "unicode": "Ünïcödé 数字 🙂 \t tabs\u00a0nbsp\u2028sep".encode(),
    "nul": b"a\x00b\x00\x00c",
}


class Lossy:
    """A tokenizer that drops carriage returns and maps tabs to spaces: what the escape path is for."""

    def encode_texts(self, texts):
        return [[ord(c) for c in t if c != "\r"] for t in texts]

    def decode(self, ids, clean_up_tokenization_spaces=False):
        return "".join(" " if c == 9 else chr(c) for c in ids)


@pytest.mark.parametrize("name", sorted(FILES))
@pytest.mark.parametrize("tok", ["byte-level", "lossy"])
def test_any_bytes_cut_into_segments_join_back_exactly(name, tok):
    t = HFTokenizer(byte_level_tokenizer()) if tok == "byte-level" else Lossy()
    data = FILES[name]
    segs = segments.split(data, t)
    assert segments.join(segs, t) == data
    lay = segments.layout(segs)
    again = segments.rebuild(lay, segments.tokens(segs), segments.raw_bytes(segs))
    assert segments.join(again, t) == data
    assert sum(n for k, n in lay if k == "raw") == len(segments.raw_bytes(segs))


def test_text_the_tokenizer_reproduces_is_never_escaped():
    t = HFTokenizer(byte_level_tokenizer())
    segs = segments.split(FILES["crlf"] + FILES["unicode"], t)
    assert [k for k, _ in segs] == ["text"]
    segs = segments.split(b"tab\there\r\nok\n", Lossy())  # only the lines it cannot reproduce are escaped
    assert [(k, p if k == "raw" else len(p)) for k, p in segs] == [("raw", b"tab\there\r\n"), ("text", 3)]


@pytest.mark.parametrize("n,chunk,lanes", [(0, 4, 2), (1, 4, 3), (10, 4, 2), (100, 7, 4), (64, 8, 8), (65, 8, 8),
                                           (5, 10, 16)])
def test_the_schedule_codes_every_target_once_in_windows_of_the_run(n, chunk, lanes):
    s = Schedule(n, chunk, lanes)
    assert s.plan == (plan_windows(n + 1, chunk, chunk) if n else [])  # the run's windows, window = stride = chunk
    seen = []
    for r in range(s.rounds):
        for w in s.round_windows(r):
            if w is not None:
                a, k = s.window_span(w)
                assert a == w * chunk and 1 <= k <= chunk
                seen += list(range(a + 1, a + k + 1))
    if s.final is not None:  # back-filled to the full chunk, after the lanes: its context is decoded by then
        f = s.final
        assert f.length == chunk and f.start + f.length == n
        seen += list(range(f.start + f.score_from + 1, f.start + f.length + 1))
    assert sorted(seen) == list(range(1, n + 1))
    assert len(s.lane_windows) <= lanes and len(s.lane_starts()) == max(len(s.lane_windows) - 1, 0)
    flat = [w for ws in s.lane_windows for w in ws]
    assert flat == list(range(s.windows))  # lanes hold contiguous runs of windows


def test_a_container_refuses_other_files_truncation_and_corruption_in_one_line():
    blob = container.pack({"original_length": 3, "x": "y"}, np.arange(5, dtype=np.uint32))
    header, body = container.unpack(blob)
    assert header["x"] == "y" and body.tolist() == [0, 1, 2, 3, 4]
    bad = [b"", b"PK\x03\x04 not ours", blob[:-1], blob[:-4] + b"\x00\x00\x00\x09",
           blob[:6] + b"\xff" + blob[7:]]
    messages = ["no LMZ magic", "no LMZ magic", "checksum mismatch", "checksum mismatch", None]
    for b, want in zip(bad, messages):
        with pytest.raises(UserError) as e:
            container.unpack(b, "f.lmz")
        assert "\n" not in str(e.value) and str(e.value).startswith("f.lmz: ")
        if want:
            assert want in str(e.value)
