"""HTTP to an OpenAI-compatible server: JSON requests with a timeout, retries with back-off, bounded concurrency.

Only the standard library (``urllib``). A request is retried after a 429, a 5xx, a timeout or a dropped
connection, at most ``max_retries`` times, waiting ``Retry-After`` when the server sends one, else
``backoff · 2^attempt`` seconds (at most :data:`MAX_WAIT`) with ±50% jitter. What still fails is a
:class:`~lm_eval_it.errors.RunStopped` (the run keeps its checkpoint and says how to resume); any other
HTTP status is a :class:`Refused` (the server understood and said no: e.g. token ids it does not take).

Example::

    >>> backoff_seconds(0, 0.5, rng=lambda: 0.5), backoff_seconds(3, 0.5, rng=lambda: 0.5)
    (0.5, 4.0)
    >>> backoff_seconds(1, 0.5, retry_after="7", rng=lambda: 0.0)
    7.0
"""

from __future__ import annotations

import json
import random
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from lm_eval_it.errors import RunStopped, UserError

MAX_WAIT = 60.0  # seconds: the longest back-off or Retry-After honoured
RETRIED = frozenset({408, 429}) | frozenset(range(500, 600))


class Refused(UserError):
    """The server answered a status that retrying does not change (4xx but 408/429)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def backoff_seconds(attempt: int, base: float, retry_after: str | None = None,
                    rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's ``Retry-After``, else jittered back-off."""
    if retry_after is not None:
        try:
            return min(MAX_WAIT, max(0.0, float(retry_after)))
        except ValueError:
            pass  # an HTTP date: fall back to back-off
    return min(MAX_WAIT, base * 2 ** attempt) * (0.5 + rng())


def _message(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        err = json.loads(text).get("error", text)
        text = err.get("message", str(err)) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:300]


class Client:
    """One server: ``get``/``post`` JSON with retries, and ``map`` over a bounded thread pool."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 120.0, max_retries: int = 5,
                 concurrency: int = 4, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        self.base_url, self.timeout_s, self.max_retries = base_url.rstrip("/"), timeout_s, max_retries
        self.backoff, self.sleep = backoff, sleep
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai")
        self.retries = 0  # retries made so far (results.json source.retries)

    def get(self, path: str, retries: int | None = None) -> dict:
        return self._request("GET", path, None, retries)

    def post(self, path: str, body: dict, retries: int | None = None) -> dict:
        return self._request("POST", path, json.dumps(body).encode(), retries)

    def map(self, fn: Callable, items: Iterable) -> list:
        """``[fn(x) for x in items]``, at most ``concurrency`` at once; the first failure is raised."""
        return list(self.pool.map(fn, items))

    def _request(self, method: str, path: str, data: bytes | None, retries: int | None) -> dict:
        url = f"{self.base_url}/{path.lstrip('/')}"
        retries = self.max_retries if retries is None else retries
        for attempt in range(retries + 1):
            wait_hint, why = None, ""
            try:
                req = urllib.request.Request(url, data=data, method=method, headers=self.headers)
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
                break
            except urllib.error.HTTPError as e:
                body = e.read()
                if e.code not in RETRIED:
                    raise Refused(e.code, _message(body)) from None
                wait_hint, why = e.headers.get("Retry-After"), f"HTTP {e.code}: {_message(body)}"
            except (socket.timeout, TimeoutError):
                why = f"no answer within {self.timeout_s:g} s (openai.timeout_s)"
            except (urllib.error.URLError, ConnectionError, OSError) as e:
                reason = getattr(e, "reason", e)
                why = f"cannot reach it ({reason})"
            if attempt == retries:
                raise RunStopped(f"server {self.base_url}: {why}, after {retries} "
                                 f"{'retry' if retries == 1 else 'retries'}")
            self.retries += 1
            self.sleep(backoff_seconds(attempt, self.backoff, wait_hint))
        try:
            return json.loads(raw)
        except ValueError:
            raise RunStopped(f"server {self.base_url}: {method} {path} answered something that is not JSON "
                             f"({raw[:80]!r})") from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
