"""The openai backend's scorer: one echoed completions request per window, the targets' log-probs taken out.

Window ``r`` of a batch is sent as its input ids, plus its last target when that lies past the window
(the engine's last scored position predicts a token outside the window); the answer's log-prob of prompt
token ``c + 1`` is the score of position ``(r, c)``. Requests run ``openai.concurrency`` at once.

With ``openai.fresh_windows`` a one-token request goes before each window, so that a server that reuses the
KV cache of the previous prompt's common prefix (llama-cpp-python's) evaluates each window afresh.

On a server that drops a leading BOS from the echo and nulls the first entry (llama-cpp-python), the
first token after BOS has no echoed log-prob; it is asked for once per token id, as the one-token
completion of BOS that ``logit_bias`` forces to be that token (the log-prob is the raw distribution's,
before the bias), and kept.

Example (against a running server)::

    scorer = OpenAIScorer(client, server, tokenizer)
    nll = torch.cat([s[4] for s in scorer.chunks(ids, None, rows, cols, targets)])
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from lm_eval_it.backends.logits import TargetLogprobScorer
from lm_eval_it.backends.openai.client import Client, Refused
from lm_eval_it.backends.openai.echo import Server, aligned, echoed, logprob, piece, prompt_text, request
from lm_eval_it.errors import RunStopped, UserError

NEEDS_BOS = ("the server's echoed log-probs are aligned only for prompts that start with BOS (llama-cpp-python "
             "leaves the BOS out and shifts the rest by one); score with eval.prefix: bos_every_window, or "
             "protocol llama-perplexity on a model that adds a BOS")


class OpenAIScorer(TargetLogprobScorer):
    """Target log-probs from an OpenAI-compatible server (a :class:`~lm_eval_it.backends.base.WindowScorer`)."""

    def __init__(self, client: Client, server: Server, tokenizer, fresh_windows: bool = False):
        self.client, self.server, self.tok, self.fresh = client, server, tokenizer, fresh_windows
        self.vocab = len(tokenizer)
        self.device = "cpu"
        self.requests = 0
        self._first: dict[int, float] = {}  # token id → log p(token | BOS), on drops_bos servers
        self._lock = threading.Lock()

    def _where(self, prompt: list[int]) -> str:
        head = prompt[1:9] if prompt[:1] == [self.server.bos] else prompt[:8]
        return f"the window starting {prompt_text(self.tok, head)!r}"

    def _row(self, job: tuple[list[int], np.ndarray]) -> np.ndarray:
        prompt, want = job
        where = self._where(prompt)
        if self.server.needs_bos and prompt[0] != self.server.bos:
            raise UserError(f"backend openai: {NEEDS_BOS} ({where})")
        try:
            if self.fresh:  # a first token unlike any window's: the server cannot reuse a cached prefix
                self.client.post("completions", {**request(self.server, self.tok, [self._breaker()]), "echo": False})
            answer = self.client.post("completions", request(self.server, self.tok, prompt))
        except Refused as e:
            raise RunStopped(f"server {self.client.base_url} refused {where}: {e}") from None
        with self._lock:
            self.requests += 1
        values = aligned(answer, prompt, self.server, self.tok, where)
        out = np.empty(len(want), np.float64)
        for i, j in enumerate(want.tolist()):
            v = values[j]
            if v is None and j == 1 and self.server.drops_bos and prompt[0] == self.server.bos:
                v = self._first_after_bos(prompt[1], where)
            if v is None:
                raise RunStopped(f"server answer for {where}: no log-prob for token {j}")
            out[i] = v
        return out

    def _breaker(self) -> int:
        """A plain token that no window starts with (windows start with BOS here, or with text)."""
        return self.tok.encode_texts(["."])[0][0]

    def _first_after_bos(self, token: int, where: str) -> float:
        """log p(token | BOS): the one-token completion of BOS, forced to ``token`` by ``logit_bias``."""
        if token not in self._first:
            s = self.server
            body = {"model": s.model, "prompt": [s.bos] if s.prompt == "ids" else prompt_text(self.tok, [s.bos]),
                    "max_tokens": 1, "logprobs": 0, "temperature": 0.0, "logit_bias": {str(token): 100.0}}
            lp = echoed(self.client.post("completions", body), where).get("logprobs") or {}
            got, values = lp.get("tokens") or [], lp.get("token_logprobs") or []
            if len(got) != 1 or len(values) != 1 or got[0] != piece(self.tok, token):
                raise RunStopped(f"server {self.client.base_url}: the log-prob of the first token after BOS "
                                 f"({piece(self.tok, token)!r}) could not be had (it echoes none, and logit_bias "
                                 f"gave {got!r})")
            self._first[token] = logprob(values[0], where, 1)
        return self._first[token]

    def target_logprobs(self, ids, mask, rows, cols, targets) -> torch.Tensor:
        ids_np = ids.cpu().numpy()
        lengths = mask.sum(1).cpu().numpy() if mask is not None else np.full(ids_np.shape[0], ids_np.shape[1])
        rows_np, cols_np, tg = rows.cpu().numpy(), cols.cpu().numpy(), targets.cpu().numpy()
        jobs, spans = [], []
        for r in np.unique(rows_np):
            sel = np.flatnonzero(rows_np == r)
            n, c = int(lengths[r]), cols_np[sel]
            prompt = ids_np[r, :n].tolist()
            inside = c + 1 < n
            if not np.array_equal(ids_np[r, c[inside] + 1], tg[sel][inside]):
                raise ValueError("openai scorer: a target is not the next token of its window")
            if (~inside).any():
                if (~inside).sum() != 1 or c[~inside][0] != n - 1:
                    raise ValueError("openai scorer: only a window's last position may predict past it")
                prompt.append(int(tg[sel][~inside][0]))
            jobs.append((prompt, c + 1))
            spans.append(sel)
        out = np.empty(len(tg), np.float64)
        for sel, values in zip(spans, self.client.map(self._row, jobs)):
            out[sel] = values
        return torch.from_numpy(out.astype(np.float32))
