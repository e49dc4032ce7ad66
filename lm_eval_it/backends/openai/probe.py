"""The probe, run once when an ``openai`` model loads: how the server takes prompts and echoes their log-probs.

1. The served model's name: ``openai.model``, else the first that ``/models`` lists.
2. ``prompt``: token ids are sent first (``auto``/``ids``); a server that refuses them (llama-cpp-python's
   takes text only) gets the text, and every answer's echoed tokens are then checked against the local ones.
3. Whether the echo leaves out a leading BOS (``Server.drops_bos``), from the count of log-probs returned.
4. Alignment: two prompts that differ only in their last token must get the same top log-probs at that
   position (that distribution depends only on the tokens before it). A server whose echo is off by one
   fails this; if it passes with a BOS in front but not without, ``Server.needs_bos`` (llama-cpp-python).
5. Tokenizer agreement: the probe text (with non-ASCII letters) is echoed and its tokens compared.

Example (against a running server; see tests/backends/test_openai_server.py)::

    server = probe(Client("http://127.0.0.1:8000/v1"), tokenizer, OpenAIOptions(base_url=...))
    server.prompt, server.drops_bos, server.needs_bos    # ('text', True, True) for llama-cpp-python
"""

from __future__ import annotations

from dataclasses import replace

from lm_eval_it.backends.openai.client import Client, Refused
from lm_eval_it.backends.openai.echo import Server, aligned, echoed, request
from lm_eval_it.config.backends import OpenAIOptions
from lm_eval_it.errors import RunStopped, UserError

PROBE_TEXT = "The capital of France is Paris; the café in Zürich serves"
LAST = (" tea", " milk")  # the alignment probe's two endings
TOLERANCE = 1e-3  # nats: the same distribution computed twice


def served_model(client: Client, options: OpenAIOptions) -> str:
    if options.model:
        return options.model
    listed = client.get("models").get("data") or []
    if not listed or not isinstance(listed[0], dict) or "id" not in listed[0]:
        raise UserError(f"openai.model: the server at {options.base_url} lists no model; name one")
    return str(listed[0]["id"])


def top_values(answer: dict, entry: int, k: int) -> list[float]:
    """The ``k`` largest log-probs of an echoed entry's ``top_logprobs`` (the actual token's extra entry aside)."""
    tops = ((echoed(answer, "the probe").get("logprobs") or {}).get("top_logprobs") or [])
    row = tops[entry] if -len(tops) <= entry < len(tops) else None
    if not isinstance(row, dict) or len(row) < k:
        raise UserError("backend openai: the server returns no top_logprobs for echoed prompts; "
                        "cannot check that its log-probs are aligned")
    return sorted((float(v) for v in row.values()), reverse=True)[:k]


def _ask(client: Client, server: Server, tok, ids: list[int], retries: int | None = None) -> dict:
    return client.post("completions", request(server, tok, ids, top=2), retries=retries)


def _mode(client: Client, server: Server, tok, ids: list[int], options: OpenAIOptions) -> tuple[Server, dict]:
    """Ids if the server takes them (``auto``: else text); the mode and its first answer."""
    if options.prompt != "text":
        try:
            return server, _ask(client, server, tok, ids, retries=0 if options.prompt == "auto" else None)
        except (Refused, RunStopped) as e:  # llama-cpp-python's server answers ids with HTTP 500
            if options.prompt == "ids":
                raise UserError(f"openai.prompt: the server at {options.base_url} does not take token ids ({e}); "
                                "use prompt: text or auto") from None
    server = replace(server, prompt="text")
    return server, _ask(client, server, tok, ids)


def _shifted(client: Client, server: Server, tok, head: list[int]) -> bool:
    """True when the echo at the last position depends on the last token: off by one."""
    k = 2
    common, ends = _endings(tok)
    head = head + common
    answers = [_ask(client, server, tok, head + [t]) for t in ends]
    entry = len(head) - int(server.drops_bos and head[:1] == [server.bos])
    a, b = (top_values(x, entry, k) for x in answers)
    return any(abs(x - y) > TOLERANCE for x, y in zip(a, b))


def _endings(tok) -> tuple[list[int], list[int]]:
    """The tokens both endings share, and the first token where they differ (``' tea'``: one token in a BPE)."""
    a, b = tok.encode_texts(list(LAST))
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return a[:i], [a[i], b[i]]


def probe(client: Client, tok, options: OpenAIOptions) -> Server:
    """What :class:`~lm_eval_it.backends.openai.echo.Server` the endpoint is (see the module doc)."""
    bos = tok.bos_token_id
    text_ids = tok.encode_texts([PROBE_TEXT])[0]
    head = ([bos] if bos is not None else []) + text_ids
    server = Server(model=served_model(client, options), prompt="ids", drops_bos=False, needs_bos=False, bos=bos)
    server, first = _mode(client, server, tok, head, options)
    values = ((echoed(first, "the probe").get("logprobs") or {}).get("token_logprobs") or [])
    generated = (first.get("usage") or {}).get("completion_tokens", 1)
    server = replace(server, drops_bos=bos is not None and len(values) - generated == len(head) - 1)
    aligned(first, head, server, tok, "the probe text")  # counts, numbers and the tokenizer's agreement
    if _shifted(client, server, tok, head):
        raise UserError(f"backend openai: the server at {options.base_url} returns misaligned echoed log-probs "
                        "(the log-prob at a position depends on the token there, not only on those before it)")
    if bos is not None and _shifted(client, server, tok, text_ids):
        server = replace(server, needs_bos=True)
    return server
