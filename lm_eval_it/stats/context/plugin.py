"""NLL by context length as a plug-in: its statistic, results block (``context_length``) and report sections.

The numbers come from :class:`lm_eval_it.stats.context.statistic.ContextStats`; the tables
are read from result rows only (``row["context_length"]``): one row per non-empty bin,
with coverage, intervals and the gain from the previous bin; bins under
:data:`lm_eval_it.stats.context.bins.MIN_BIN_TOKENS` tokens are marked ``(few)``.

Example::

    >>> bins = [{"lo": 64, "hi": 127, "tokens": 5, "bits_per_token": 3.0},
    ...         {"lo": 1024, "hi": 2047, "tokens": 5, "bits_per_token": 2.5}]
    >>> context_gain({"bins": bins})["gain"]
    0.5
"""

from __future__ import annotations

from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.base import Plugin, Setup
from lm_eval_it.stats.context.bins import MIN_BIN_TOKENS
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.intervals import INTERVAL_LABEL
from lm_eval_it.stats.tables import by_dataset, cell, md_table

# what the windows that ran scored in a bin (``coverage``, counted from the data: lm_eval_it.stats.context.bins)
COVERAGE = {"steady": "first and later windows", "partial": "partly first window only",
            "first_window_only": "first window only", None: "–"}


def _span(b: dict) -> str:
    return str(b["lo"]) if b["lo"] == b["hi"] else f"{b['lo']}–{b['hi']}"


def _few(b: dict) -> bool:
    """A non-empty bin with fewer than the minimum tokens (older results: from its token count)."""
    return bool(b["tokens"]) and b.get("below_min_tokens", b["tokens"] < MIN_BIN_TOKENS)


def _scored_in(b: dict) -> str:
    """The bin's coverage label, with the share of its tokens scored after a document's first window."""
    text = COVERAGE.get(b.get("coverage"), b.get("coverage"))
    after = b.get("tokens_after_first_window")
    if after and b.get("coverage") != "first_window_only":
        text += f" ({100 * after / b['tokens']:.0f}% later)"
    return text


def context_table(row: dict) -> dict:
    """One row per non-empty bin: coverage, docs, tokens, bits/token and bits/byte, gain from the previous bin.

    Bins under the minimum token count are marked ``(few)`` and listed in ``muted`` (greyed out in HTML)."""
    cl = row["context_length"]
    gains = {g["to_bin"]: g for g in cl.get("gains", [])}
    out, muted = [], []
    for b in cl["bins"]:
        if not b["tokens"]:
            continue
        g = gains.get(b["bin"])
        if _few(b):
            muted.append(len(out))
        out.append([_span(b), _scored_in(b), str(b["docs"]), str(b["tokens"]) + (" (few)" if _few(b) else ""),
                    cell(b["bits_per_token"], b["bits_per_token_interval"]),
                    cell(b["bits_per_byte"], b["bits_per_byte_interval"]),
                    cell(g["bits_per_token"], g["interval"], "+.4f") if g else "–"])
    return {"headers": ["context (tokens)", "scored in", "docs", "tokens", "bits/token", "bits/byte",
                        "gain bits/token"], "rows": out, "left": 2, "muted": muted}


def _after_note(cl: dict) -> str:
    """What the windows after documents' first windows scored, from the counts (older results: the plan)."""
    w, s = cl.get("window"), cl.get("stride")
    if cl.get("tokens_after_first_window") is None:  # not counted (older results): only what the plan allows
        if cl.get("observed_range") and s is not None and w is not None and s < w:
            lo, hi = cl["observed_range"]
            return (f" Window {w}, stride {s}: after a document's first window only context lengths {lo}–{hi} "
                    f"can occur; bins below that hold only documents' openings.")
        return ""
    if not cl["tokens_after_first_window"]:
        return (" No document had a second window: every token was scored in its document's first window, so "
                "context length here is also the position in the document.")
    lo, hi = cl["after_first_window_range"]
    return (f" Window {w}, stride {s}: after documents' first windows, {cl['tokens_after_first_window']} tokens "
            f"were scored, with context lengths {lo}–{hi}; bins scored in 'first window only' (or 'partly') hold "
            "only documents' openings there, so they mix context length with position in the document; "
            "(n% later): the share of a bin's tokens scored after a first window.")


def context_note(row: dict) -> str:
    cl = row["context_length"]
    note = ("Context length = input tokens the model saw for a prediction, in power-of-two bins; gain bits/token = "
            "bits/token of the previous (shorter) bin minus this bin's (positive: more context helped). "
            f"Intervals: {INTERVAL_LABEL}." + _after_note(cl))
    few = [_span(b) for b in cl["bins"] if _few(b)]
    if few:
        note += (f" (few): fewer than {cl.get('min_bin_tokens', MIN_BIN_TOKENS)} scored tokens ({', '.join(few)}), "
                 "too few for the bin's bits/token to be read as a finding (greyed out in report.html and the plot).")
    return note


def context_terminal_table(rows: list[dict]) -> dict:
    """bits/token per bin, one line per model × dataset (bins scored only in first windows marked *, bins
    under the minimum token count followed by their count ``n=…``)."""
    rows = [r for r in rows if r.get("context_length")]
    bins = sorted({(b["lo"], b["hi"]) for r in rows for b in r["context_length"]["bins"] if b["tokens"]})
    out = []
    for r in rows:
        have = {(b["lo"], b["hi"]): b for b in r["context_length"]["bins"] if b["tokens"]}
        out.append([r["model"], r["dataset"]] + [
            _f(have[k]["bits_per_token"], ".3f") + ("*" if have[k].get("coverage") not in ("steady", None) else "")
            + (f" n={have[k]['tokens']}" if _few(have[k]) else "") if k in have else "–" for k in bins])
    return {"headers": ["model", "dataset"] + [_span({"lo": lo, "hi": hi}) for lo, hi in bins], "rows": out,
            "left": 2}


def context_gain(cl: dict | None, lo: int = 64, hi: int = 1024) -> dict | None:
    if not cl:
        return None
    if cl.get(f"gain_{lo}_{hi}"):
        return cl[f"gain_{lo}_{hi}"]
    b_lo = next((b for b in cl["bins"] if b["lo"] <= lo <= b["hi"] and b["tokens"]), None)
    b_hi = next((b for b in cl["bins"] if b["lo"] <= hi <= b["hi"] and b["tokens"]), None)
    if b_lo is None or b_hi is None:
        return None
    return {"lo": lo, "hi": hi, "bits_per_token_lo": b_lo["bits_per_token"],
            "bits_per_token_hi": b_hi["bits_per_token"], "gain": b_lo["bits_per_token"] - b_hi["bits_per_token"], "interval": None}


class ContextPlugin(Plugin):
    """Always on: every statistic's rows carry their context length."""

    name, keys = "context", ("context_length",)
    order = {"markdown": 10, "html": 10, "terminal": 10}

    def __init__(self, window: int, stride: int):
        self.statistic = ContextStats(window, stride)

    @classmethod
    def build(cls, setup: Setup) -> "ContextPlugin":
        return cls(setup.window, setup.stride)

    @classmethod
    def markdown(cls, rows: list[dict], terminal: bool = False) -> str:
        ctx = [r for r in rows if r.get("context_length")]
        if not ctx:
            return ""
        out = ["## NLL by context length", ""]
        if terminal:
            out += [md_table(context_terminal_table(ctx)), "",
                    "bits/token per context-length bin (tokens); * bins holding lengths scored only in documents' "
                    f"first windows; n=…: a bin with fewer than {MIN_BIN_TOKENS} scored tokens, too few to read.", ""]
        else:
            for r in ctx:
                out += [f"### {r['model']} · {r['dataset']}", "", md_table(context_table(r)), "", context_note(r), ""]
        return "\n".join(out)

    @classmethod
    def terminal(cls, rows: list[dict]) -> str:
        return cls.markdown(rows, terminal=True)

    @classmethod
    def html(cls, results: dict) -> list:
        out = []
        for name, grp in by_dataset(results["results"], "context_length").items():
            blocks = [{"plot": "context_length", "args": [grp], "alt": f"bits per token against context length · {name}"}]
            for r in grp:
                blocks += [{"h3": r["model"]}, {"table": context_table(r)}]
            blocks.append({"note": context_note(grp[0])})
            out.append((f"NLL by context length · {name}", blocks))
        return out

    @classmethod
    def compare(cls, row: dict, base: dict) -> dict:
        return {"gain_64_1024": context_gain(row.get("context_length"))}
