"""The window protocol: bytes to tokens, a clamp that keeps the overlap, a prefix that takes a position."""

import pytest

from lm_eval_it.config.schema import EvalConfig
from lm_eval_it.engine.protocol import resolve_protocol, token_window
from lm_eval_it.errors import UserError


def test_bytes_convert_at_the_datasets_bytes_per_token():
    assert token_window(4000, 2000, "bytes", 4.0, None, False, "m") == (1000, 500, None)
    assert token_window(3, 1, "bytes", 4.0, None, False, "m")[:2] == (2, 1)  # at least 2 and 1


def test_a_clamp_scales_the_stride_and_says_so():
    window, stride, note = token_window(1024, 256, "tokens", 1.0, 512, False, "m")
    assert (window, stride) == (512, 128)
    assert note == ("eval.window 1024 tokens exceeds m's maximum of 512 positions; window clamped to 512 and "
                    "stride 256 scaled to 128 (the same overlap fraction)")
    with pytest.raises(UserError, match="exceeds m's maximum of 512 positions; lower it"):
        token_window(1024, 256, "tokens", 1.0, 512, True, "m")


def test_resolve_protocol_gives_bos_every_window_a_position():
    proto, note = resolve_protocol(EvalConfig(window=16, stride=16, prefix="bos_every_window"), 0, "bos:<s>", 3.0,
                                   None, "m")
    assert note is None
    assert (proto.window, proto.plan_window, proto.stride, proto.every_window) == (16, 15, 15, True)
    plain, _ = resolve_protocol(EvalConfig(window=16, stride=8), 0, "bos:<s>", 3.0, None, "m")
    assert (plain.window, plain.plan_window, plain.stride, plain.every_window) == (16, 16, 8, False)
    assert (plain.configured_window, plain.configured_stride, plain.prefix_id, plain.prefix) == (16, 8, 0, "bos:<s>")


def test_resolve_protocol_in_bytes_records_the_configured_values():
    proto, note = resolve_protocol(EvalConfig(window=400, stride=200, window_unit="bytes"), None, "none", 4.0, 64,
                                   "m")
    assert (proto.window, proto.stride, proto.configured_window, proto.window_unit) == (64, 32, 400, "bytes")
    assert "clamped to 64" in note
