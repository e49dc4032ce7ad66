"""One window as a completions request with ``echo``, and its answer checked and aligned to the prompt's tokens.

The request asks for nothing new (``max_tokens: 1``, as lm-evaluation-harness does) and for the prompt's
own log-probs back: ``echo: true`` with ``logprobs`` (every server), and vLLM's ``prompt_logprobs``
(keyed by token id, used when the answer has them). :func:`aligned` turns an answer into
``value[j] = log p(prompt[j] | prompt[:j])`` (``None`` where the server gives none) after checking it:
the count of log-probs against the tokens sent, each a finite number ≤ 0, and the echoed token strings
against the local tokenizer's pieces (with ``prompt: text`` the server tokenised the text itself).
Anything else is one line naming the window, never a silent misalignment.

A server that drops a leading BOS from the echo (llama-cpp-python: ``Server.drops_bos``) returns
entry ``e`` for prompt token ``e + 1``, and sets the first entry to null.

Example::

    >>> s = Server(model="m", prompt="ids", drops_bos=False, needs_bos=False, bos=1)
    >>> answer = {"choices": [{"logprobs": {"tokens": ["<s>", "a", "b", "c"],
    ...                                     "token_logprobs": [None, -1.5, -0.25, -3.0]}}],
    ...           "usage": {"completion_tokens": 1}}
    >>> aligned(answer, [1, 7, 8], s, None, "w")
    [None, -1.5, -0.25]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lm_eval_it.errors import RunStopped

POSITIVE_SLACK = 1e-4  # a log-prob above this is not a rounding of 0: garbage


@dataclass(frozen=True)
class Server:
    """What the probe found out about the server (:mod:`lm_eval_it.backends.openai.probe`)."""

    model: str  # the request's model name
    prompt: str  # ids | text
    drops_bos: bool  # the echo leaves out a leading BOS (entry e is prompt token e + 1; the first is null)
    needs_bos: bool  # the echoed log-probs are aligned only when the prompt starts with BOS
    bos: int | None  # the local tokenizer's BOS id


def prompt_text(tok, ids: list[int]) -> str:
    """The text that the server tokenises back into ``ids``: pieces, with BOS/EOS as their special text."""
    special = {tok.bos_token_id: tok.bos_token, tok.eos_token_id: tok.eos_token}
    if not hasattr(tok, "piece_bytes"):
        return tok.decode(ids)
    out = b"".join(special[i].encode() if i in special and special[i] else tok.piece_bytes(i) for i in ids)
    return out.decode("utf-8", "replace")


def piece(tok, token: int) -> str:
    """One token as a server writes it in ``logprobs.tokens`` (incomplete UTF-8 dropped, specials as text)."""
    if token in (tok.bos_token_id, tok.eos_token_id):
        return tok.bos_token if token == tok.bos_token_id else tok.eos_token
    if hasattr(tok, "piece_bytes"):
        return tok.piece_bytes(token).decode("utf-8", "ignore")
    return tok.decode([token])


def request(server: Server, tok, ids: list[int], top: int = 0) -> dict:
    """The completions request body that echoes ``ids`` with their log-probs."""
    prompt = ids if server.prompt == "ids" else prompt_text(tok, ids)
    return {"model": server.model, "prompt": prompt, "max_tokens": 1, "echo": True, "logprobs": top,
            "temperature": 0.0, "prompt_logprobs": top}


def logprob(x, where: str, j: int) -> float | None:
    """``x`` as a log-prob: ``None``, or a finite number <= 0 (else one line naming the window and token)."""
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x > POSITIVE_SLACK:
        raise RunStopped(f"server answer for {where}: log-prob of token {j} is {x!r}, not a finite number <= 0")
    return min(0.0, float(x))  # within the slack above 0: a rounding of log 1


def _from_prompt_logprobs(rows: list, ids: list[int], where: str) -> list[float | None]:
    """vLLM's ``prompt_logprobs``: one ``{token id: {logprob, ...}}`` per prompt token (``None`` first)."""
    if len(rows) != len(ids):
        raise RunStopped(f"server answer for {where}: {len(rows)} prompt log-probs for the {len(ids)} tokens sent")
    out: list[float | None] = []
    for j, (row, t) in enumerate(zip(rows, ids)):
        entry = None if row is None else row.get(str(t), row.get(t)) if isinstance(row, dict) else "?"
        if row is not None and entry is None:
            raise RunStopped(f"server answer for {where}: prompt log-probs of token {j} do not hold token id {t}")
        out.append(logprob(entry.get("logprob") if isinstance(entry, dict) else entry, where, j))
    return out


def echoed(answer: dict, where: str) -> dict:
    """``choices[0]`` of an answer, or one line saying what is wrong with it."""
    try:
        choice = answer["choices"][0]
        assert isinstance(choice, dict)
        return choice
    except (KeyError, IndexError, TypeError, AssertionError):
        raise RunStopped(f"server answer for {where} has no choices[0]: {str(answer)[:120]}") from None


def aligned(answer: dict, ids: list[int], server: Server, tok, where: str) -> list[float | None]:
    """``value[j] = log p(ids[j] | ids[:j])`` from a checked answer (see the module doc)."""
    choice = echoed(answer, where)
    sent = (answer.get("usage") or {}).get("prompt_tokens")
    if isinstance(sent, int) and not isinstance(sent, bool) and sent != len(ids):
        raise RunStopped(f"server answer for {where}: it read the prompt as {sent} tokens, not the {len(ids)} sent "
                         "(did it add its own BOS, or tokenise the text otherwise?)")
    if isinstance(choice.get("prompt_logprobs"), list):
        return _from_prompt_logprobs(choice["prompt_logprobs"], ids, where)
    lp = choice.get("logprobs")
    values, tokens = (lp.get("token_logprobs"), lp.get("tokens")) if isinstance(lp, dict) else (None, None)
    if not isinstance(values, list):
        raise RunStopped(f"server answer for {where} has no logprobs.token_logprobs (does it echo prompt log-probs?)")
    drop = int(server.drops_bos and ids[0] == server.bos)
    expect = len(ids) - drop
    generated = (answer.get("usage") or {}).get("completion_tokens")
    ok = len(values) == expect + generated if isinstance(generated, int) else expect <= len(values) <= expect + 1
    if not ok:
        raise RunStopped(f"server answer for {where}: {len(values)} log-probs for the {len(ids)} tokens sent "
                         f"(expected {expect} echoed{'' if drop == 0 else ', the leading BOS left out'}, plus the "
                         f"{generated if isinstance(generated, int) else 'one'} generated)")
    if tok is not None and isinstance(tokens, list):
        check_tokens(tokens[:expect], ids[drop:], tok, where, drop)
    out: list[float | None] = [None] * drop + [logprob(v, where, e + drop) for e, v in enumerate(values[:expect])]
    return out


def check_tokens(theirs: list, ids: list[int], tok, where: str, offset: int = 0) -> None:
    """The echoed token strings are the local pieces (an incomplete UTF-8 piece is not checkable)."""
    for e, (s, t) in enumerate(zip(theirs, ids)):
        if t in (tok.bos_token_id, tok.eos_token_id):
            continue  # servers write special tokens their own way (or not at all)
        mine = piece(tok, t)
        if s != mine and mine and "\ufffd" not in str(s) and not str(s).startswith("bytes:"):
            raise RunStopped(f"server answer for {where}: token {e + offset} is {s!r} on the server but {mine!r} "
                             f"(id {t}) here; the server's tokenizer does not match the local one")
