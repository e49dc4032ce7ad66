"""A llama-perplexity run does not pair with a strided run of the same window (the protocol is part of it)."""

from lm_eval_it.report.compare.runs import protocol_text, run_protocol

STRIDED = {"eval": {"window": 16, "stride": 16, "prefix": "none", "window_unit": "tokens", "protocol": "strided"}}
LLAMA = {"eval": {"window": 16, "stride": 16, "prefix": "none", "window_unit": "tokens",
                  "protocol": "llama-perplexity", "chunks": 3}}


def test_the_protocol_and_chunk_limit_are_part_of_the_comparison_protocol():
    old = {"eval": {k: v for k, v in STRIDED["eval"].items() if k != "protocol"}}  # a run from before the field
    assert run_protocol(STRIDED) == run_protocol(old) == {"window": 16, "stride": 16, "prefix": "none",
                                                          "window_unit": "tokens"}
    assert run_protocol(LLAMA) != run_protocol(STRIDED)
    assert protocol_text(run_protocol(LLAMA)) == "window 16 tokens, stride 16, prefix none, llama-perplexity (3 chunks)"
