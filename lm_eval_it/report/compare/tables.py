"""The comparison's tables as cells: a compact main table, then detail tables.

The main table has what a comparison is read for, one model a line:

    model | dtype / quant | bits/byte (95% CI) | Δ bits/byte (95% CI) | significant | bytes | tokens/s

(the dtype, quantisation and backend are the model's, not the protocol's; ``‡`` on ``bytes``: the
models scored different bytes). The detail tables hold the rest: the other units; the tokenizers'
vocabulary, fertility and losslessness; context gain, compression ratio and the window protocol each
model ran. Each has at most 7 columns, so that it fits a 1280 px page.

Cells are strings for Markdown, or ``{"value", "interval"}`` for HTML (the interval under the value).

Example::

    >>> e = {"bits_per_byte": 0.9848, "bits_per_byte_ci": [0.98, 0.99]}
    >>> value_cell(e["bits_per_byte"], e["bits_per_byte_ci"], html=False)
    '0.9848 [0.9800, 0.9900]'
    >>> weights_text({"dtype": "float32", "gguf_file": "SmolLM2-135M-Instruct-Q4_1.gguf"})
    'GGUF Q4_1 → float32'
"""

from __future__ import annotations

import re

from lm_eval_it.numfmt import DASH, interval, missing, num

MAIN_HEADERS = ["model", "dtype / quant", "bits/byte (95% CI)", "Δ bits/byte (95% CI)", "significant", "bytes",
                "tokens/s"]
UNIT_HEADERS = ["model", "bits/char", "bits/word", "word ppl", "token ppl"]
TOKENIZER_HEADERS = ["model", "vocab", "tokens/byte", "tokens/word", "bytes/token", "lossy docs"]
CONTEXT_HEADERS = ["model", "÷ best compressor", "gain 64→1024 bits/token", "window", "stride", "prefix"]
DETAIL_TITLES = ("Details · other units", "Details · tokenizers", "Details · context, compression and protocol")
STATISTICS_TITLE = "Details · statistics against the baseline"
_GGUF_QUANT = re.compile(r"(?i)(?:^|[-_.])(I?Q\d+(?:_[A-Z0-9]+)*|BF16|F16|F32)$")


_f = num  # a dash for None and for any non-finite number (numpy's too)


def _ci(iv, html: bool, spec: str = ".4f") -> str:
    if not iv or missing(iv[0]) or missing(iv[1]):
        return DASH
    return f"{num(iv[0], spec)}–{num(iv[1], spec)}" if html else interval(iv, spec)


def value_cell(value, interval, html: bool, spec: str = ".4f"):
    """A value with its interval: ``{"value", "interval"}`` for HTML, ``'v [lo, hi]'`` for Markdown."""
    if html:
        return {"value": _f(value, spec), "interval": _ci(interval, True, spec) if interval else ""}
    return _f(value, spec) + (f" {_ci(interval, False, spec)}" if interval else "")


def delta_cells(d: dict | None) -> tuple[str, str, str]:
    """(Δ, its interval, significant) of a paired Δ dict; ``baseline`` for the baseline itself."""
    if d is None:
        return "baseline", "", ""
    ci = _ci([d.get("low"), d.get("high")], False, "+.4f")
    if d.get("few_documents"):
        sig = "n/a (few docs)"
    else:
        sig = "" if d.get("significant") is None else ("yes" if d["significant"] else "no")
    return _f(d.get("delta"), "+.4f"), ci, sig


def gain_text(g: dict | None) -> str:
    """``+gain [lo, hi]``, naming the two bins when they are not 64–127 → 512–1023 (a window under 1024);
    a dash when there is no gain (no bin of 64, or a bin that scored no tokens: ``null`` or NaN)."""
    if not g or missing(g.get("gain")):
        return DASH
    iv = g.get("interval")
    ranges = ""
    if g.get("lo_range") and g.get("hi_range") and g["hi_range"][1] < 1023:  # a window under 1024: say which bins
        ranges = f" ({g['lo_range'][0]}–{g['lo_range'][1]} → {g['hi_range'][0]}–{g['hi_range'][1]})"
    return _f(g["gain"], "+.4f") + (f" {interval(iv, '+.4f')}" if iv else "") + ranges


def weights_text(e: dict) -> str:
    """The model's numeric format: its dtype, the GGUF quantisation it was de-quantised from, and its backend
    where it is not the default ``hf`` (e.g. ``gguf:Q4_1 · llama.cpp``)."""
    text = e.get("dtype") or "–"
    if e.get("gguf_file"):
        stem = re.sub(r"(?i)\.gguf$", "", e["gguf_file"].split("/")[-1])
        tag = _GGUF_QUANT.search(stem)
        text = f"GGUF {tag.group(1).upper() if tag else ''} → {text}".replace("GGUF  →", "GGUF →")
    if e.get("backend") and e["backend"] != "hf":
        text += f" · {e['backend']}"
    return text


def main_cells(e: dict, t: dict, html: bool) -> list:
    d = e["delta"]
    delta, dci, sig = delta_cells(d)
    if html and d is not None:
        delta = {"value": delta, "interval": dci.strip("[]").replace(", ", " – ") if dci != "–" else "–"}
    elif d is not None and dci:
        delta = f"{delta} {dci}"
    nbytes = f"{e['bytes']:,}" + ("" if t.get("same_bytes", True) else "‡")
    return [e["model"], weights_text(e), value_cell(e["bits_per_byte"], e["bits_per_byte_ci"], html), delta, sig,
            nbytes, _f(e.get("tokens_per_second"), ",.0f")]


def unit_cells(e: dict, t: dict) -> list[str]:
    tppl = _f(e["token_perplexity"], ".3f") + ("" if t["token_comparable"] else "†")
    return [e["model"], _f(e["bits_per_char"]), _f(e["bits_per_word"]), _f(e["word_perplexity"], ".2f"), tppl]


def tokenizer_cells(e: dict) -> list[str]:
    return [e["model"], str(e["vocab_size"]), _f(e["tokens_per_byte"]), _f(e["tokens_per_word"], ".3f"),
            _f(e["bytes_per_token"], ".3f"), str(e["lossy_documents"])]


def context_cells(e: dict, html: bool) -> list[str]:
    prefix = str(e["prefix"]) if html else f"`{e['prefix']}`"  # `bos:<s>`: no tag in Markdown
    return [e["model"], _f(e.get("compression_ratio"), ".3f"), gain_text(e.get("gain_64_1024")), str(e["window"]),
            _f(e.get("stride"), "d"), prefix]


def tables(t: dict, html: bool, extra_columns=()) -> list[tuple[str, dict]]:
    """(title, table) for one comparison: the main table (title ``""``), then the detail tables; with
    ``extra_columns`` ((key, header, format) of the statistics' comparison fields) one more, when any is set."""
    rows = t["rows"]
    out = [("", {"headers": MAIN_HEADERS, "rows": [main_cells(e, t, html) for e in rows], "left": 2}),
           (DETAIL_TITLES[0], {"headers": UNIT_HEADERS, "rows": [unit_cells(e, t) for e in rows]}),
           (DETAIL_TITLES[1], {"headers": TOKENIZER_HEADERS, "rows": [tokenizer_cells(e) for e in rows]}),
           (DETAIL_TITLES[2], {"headers": CONTEXT_HEADERS, "rows": [context_cells(e, html) for e in rows], "text": [5]})]
    shown = [c for c in extra_columns if any(e.get(c[0]) is not None for e in rows)]
    if shown:
        out.append((STATISTICS_TITLE, {"headers": ["model"] + [h for _, h, _ in shown],
                                       "rows": [[e["model"]] + [num(e.get(k), f) for k, _, f in shown] for e in rows]}))
    return out


def markdown(table: dict) -> list[str]:
    """A table's Markdown lines: header, alignment (first column left, the rest right), rows."""
    cell = lambda c: c["value"] if isinstance(c, dict) else str(c)  # noqa: E731
    left, text = table.get("left", 1), table.get("text", [])
    align = ["---" if i < left or i in text else "--:" for i in range(len(table["headers"]))]
    return ["| " + " | ".join(table["headers"]) + " |", "|" + "|".join(align) + "|",
            *("| " + " | ".join(cell(c) for c in row) + " |" for row in table["rows"])]
