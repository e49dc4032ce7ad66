"""A tiny in-process OpenAI-compatible completions server (stdlib ``http.server`` in a thread) and a byte tokenizer.

Its log-probs are a fixed function of the prefix (:func:`logprob`), so a test knows every right answer. Modes:
``vllm`` (takes ids, echoes every prompt token, the first null), ``llama`` (llama-cpp-python: text only, a
leading BOS left out of the echo and the first entry nulled, off by one without a BOS), ``shifted`` (off by one
always). ``fake.plan`` is a list of one-shot answers taken first (``(status, headers)``, ``"sleep"``), and
``fake.garbage`` spoils every answer; ``pieces=False``: no token strings (ids of a tokenizer it does not know) (``few``, ``nan``, ``string``, ``positive``, ``tokens``, ``html``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOS, EOS, OFFSET = 1, 2, 3


class ByteTok:
    """Token ``b + 3`` is byte ``b``; ``<s>`` (1) and ``</s>`` (2) are special."""

    bos_token_id, eos_token_id, bos_token, eos_token = BOS, EOS, "<s>", "</s>"

    def encode_texts(self, texts):
        return [[b + OFFSET for b in t.encode("utf-8")] for t in texts]

    def piece_bytes(self, i):
        return b"" if i < OFFSET else bytes([i - OFFSET])

    def decode(self, ids, clean_up_tokenization_spaces=False):
        return b"".join(self.piece_bytes(i) for i in ids).decode("utf-8", "replace")

    def tokenize(self, text):  # the server's: "<s>" is special
        parts = text.split("<s>")
        ids = self.encode_texts([parts[0]])[0]
        for p in parts[1:]:
            ids += [BOS] + self.encode_texts([p])[0]
        return ids

    def info(self):
        return {"fingerprint": "bytes"}

    def __len__(self):
        return 256 + OFFSET


def _h(prefix) -> int:
    return sum((i + 1) * x for i, x in enumerate(prefix))


def logprob(prefix, token) -> float:
    """The fake model's log p(token | prefix)."""
    return -(0.1 + ((_h(prefix) * 7 + token * 13) % 97) / 20)


def top(prefix) -> dict:
    g = _h(prefix) % 8  # the top two stay above every token's log-prob (<= -0.1)
    return {"A": -0.001 - g / 100, "B": -0.002 - g / 100}


class Fake:
    def __init__(self, mode="vllm", pieces=True):
        self.mode, self.tok, self.plan, self.garbage, self.pieces = mode, ByteTok(), [], None, pieces
        self.requests, self.bodies = 0, []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status, body, headers=()):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for k, v in dict(headers).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests += 1
                fake.bodies.append(body)
                if fake.plan:
                    step = fake.plan.pop(0)
                    if step == "sleep":
                        time.sleep(1.0)
                    else:
                        return self._send(step[0], {"error": {"message": "planned"}}, step[1])
                status, answer = fake.answer(body)
                self._send(status, answer)

        return H

    def answer(self, body):
        prompt = body["prompt"]
        if isinstance(prompt, list):
            if self.mode == "llama":
                return 500, {"error": {"message": "prompt: Input should be a valid string"}}
            ids = prompt
        else:
            ids = self.tok.tokenize(prompt)
        if not body.get("echo"):  # llama's forced first token after BOS
            t = int(next(iter(body["logit_bias"])))
            return 200, {"choices": [{"logprobs": {"tokens": [self._piece(t)], "token_logprobs": [logprob(ids, t)]}}]}
        drop = int(self.mode == "llama" and ids[0] == BOS)
        shifted = self.mode == "shifted" or (self.mode == "llama" and not drop)
        entries = []
        for j in range(drop, len(ids)):
            prefix = ids[: j + 1] if shifted else ids[:j]
            entries.append((self._piece(ids[j]), logprob(prefix, ids[j]), {**top(prefix), self._piece(ids[j]): 0}))
        values = [e[1] for e in entries] + [-1.0]
        values[0] = None
        tops = [dict(e[2], **{e[0]: e[1]}) for e in entries] + [{"x": -1.0}]
        tops[0] = None
        tokens = [e[0] for e in entries] + ["x"]
        values, tokens = self._spoil(values, tokens)
        if self.garbage == "html":
            return 200, b"<html>502 Bad Gateway</html>"
        return 200, {"choices": [{"text": "", "logprobs": {"tokens": tokens if self.pieces else None, "token_logprobs": values,
                                                          "top_logprobs": tops}}],
                     "usage": {"prompt_tokens": len(ids) + (self.garbage == "own_bos"), "completion_tokens": 1}}

    def _piece(self, t):
        if not self.pieces:  # ids of another tokenizer: no token strings
            return f"<{t}>"
        return {BOS: "<s>", EOS: "</s>"}.get(t) or self.tok.piece_bytes(t).decode("utf-8", "ignore")

    def _spoil(self, values, tokens):
        g = self.garbage
        if g == "few":
            return values[:-3], tokens[:-3]
        if g in ("nan", "string", "positive"):
            values = list(values)
            values[2] = {"nan": float("nan"), "string": "-0.5", "positive": 0.7}[g]
        if g == "tokens":
            tokens = list(tokens)
            tokens[2] = "??"
        return values, tokens
