"""What the report headers say about the run: the window, stride and prefix that ran, and what bits/byte is over.

The config may say ``prefix: auto``, a window beyond a model's positions (clamped, the stride
scaled with it) or ``window_unit: bytes`` (converted per model); what ran is recorded per
model × dataset in ``results[].eval`` (``window`` and ``stride`` in tokens, ``prefix`` as
``bos:<s>``, ``eos:</s>``, ``none``, ``literal:<tok>``, ``bos_every_window:<s>``), and that is
what summary.md and report.html show, with the configured value in brackets when it differs.

Example::

    >>> res = {"config": {"eval": {"prefix": "auto"}},
    ...        "results": [{"model": "m", "dataset": "d", "eval": {"prefix": "bos:<s>"},
    ...                     "per_document": [{"bytes": 5}]}]}
    >>> prefix_text(res)
    'bos:<s> (configured: auto)'
    >>> res["config"]["eval"].update(window=4096, stride=2048, window_unit="tokens")
    >>> res["results"][0]["eval"].update(window=2048, stride=1024)   # clamped to the model's 2048 positions
    >>> ran_text(res, "window"), ran_text(res, "stride")
    ('2048 (configured: 4096)', '1024 (configured: 2048)')
    >>> same_text_note(res)
    'bits/byte, bits/word and bits/char are over the same text for every model.'
    >>> protocol_text(res)
    'window 2048 (configured: 4096), stride 1024 (configured: 2048), prefix bos:<s> (configured: auto)'
    >>> res["results"][0]["eval"].update(protocol="llama-perplexity", n_ctx=512)
    >>> protocol_text(res)
    "protocol llama-perplexity: n_ctx 512, each chunk's first token replaced by BOS, its second half scored"
"""

from __future__ import annotations

from lm_eval_it.stats.metrics import same_scored_bytes


def ran_text(results: dict, key: str, code: bool = False) -> str:
    """The ``results[].eval[key]`` that ran (``window``, ``stride``, ``prefix``), per model where they differ,
    and the configured one in brackets when it is another (``auto``, a clamped window, a window in bytes).
    ``code``: each in backticks (Markdown)."""
    q = (lambda x: f"`{x}`") if code else str  # noqa: E731
    ev = results["config"]["eval"]
    configured = str(ev.get(key))
    if key in ("window", "stride") and ev.get("window_unit") == "bytes":
        configured += " bytes"
    ran: dict[str, list[str]] = {}
    for r in results["results"]:
        models = ran.setdefault(str(r["eval"][key]), [])
        if r["model"] not in models:
            models.append(r["model"])
    if not ran:
        return q(configured)
    text = (q(next(iter(ran))) if len(ran) == 1 else
            ", ".join(f"{q(p)} ({', '.join(ms)})" for p, ms in ran.items()))
    return text if list(ran) == [configured] else f"{text} (configured: {configured})"


def prefix_text(results: dict, code: bool = False) -> str:
    """The prefix that ran (``results[].eval.prefix``, e.g. ``bos:<s>``): :func:`ran_text` of ``prefix``."""
    return ran_text(results, "prefix", code)


def protocol_text(results: dict, code: bool = False) -> str:
    """How tokens were cut and scored: window, stride and prefix that ran (:func:`ran_text`), or, under
    ``protocol: llama-perplexity``, its n_ctx and what the protocol does (window and stride do not apply)."""
    llama = [r for r in results["results"] if (r.get("eval") or {}).get("protocol") == "llama-perplexity"]
    if llama and len(llama) == len(results["results"]):
        n_ctx = sorted({str(r["eval"].get("n_ctx")) for r in llama})
        return (f"protocol llama-perplexity: n_ctx {', '.join(n_ctx)}, each chunk's first token replaced by BOS, "
                "its second half scored")
    return (f"window {ran_text(results, 'window')}, stride {ran_text(results, 'stride')}, "
            f"prefix {prefix_text(results, code)}")


def same_text_note(results: dict) -> str:
    """What bits/byte, bits/word and bits/char are over: the same text for every model, unless some
    models scored other bytes (``prefix: none`` with different tokenizers)."""
    by_data: dict[str, list[dict]] = {}
    for r in results["results"]:
        by_data.setdefault(r["dataset"], []).append(r)
    differ = [name for name, rows in by_data.items() if not same_scored_bytes(rows)]
    if not differ:
        return "bits/byte, bits/word and bits/char are over the same text for every model."
    return (f"bits/byte, bits/word and bits/char are over the same documents but not the same bytes on "
            f"{', '.join(differ)}: with prefix none each tokenizer's first token of a document is context only, "
            "so each model scored other bytes (see bytes).")
