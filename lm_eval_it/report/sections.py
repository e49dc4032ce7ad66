"""Report sections for issue #14: NLL by context length, compression baselines, memorisation, groups.

Every number is read from result rows (``results.json``'s ``results``): ``context_length``,
``compression``, ``memorisation``, ``groups`` and ``per_document``; nothing is recomputed.
Each finding is first built as a table (``{"headers", "rows", "left"}``; a cell is a string
or ``{"value", "interval"}``), then rendered as Markdown (:func:`insights_markdown`, for
summary.md; ``terminal=True`` keeps only the short tables) or as HTML sections
(:func:`insights_sections`, for report.html). Missing numbers print as a dash
(:mod:`lm_eval_it.numfmt`); context-length bins with fewer than
:data:`lm_eval_it.stats.context.bins.MIN_BIN_TOKENS` tokens are marked ``(few)`` and greyed out.

Example::

    >>> row = {"model": "m", "dataset": "d", "metrics": {"bits_per_byte": 1.0}, "compression": {
    ...     "compressors": {"gzip": {"bits_per_byte": 2.5}, "xz": {"bits_per_byte": 2.0}}, "best": "xz",
    ...     "best_bits_per_byte": 2.0, "model_to_best_ratio": 0.5, "definition": "bits out / bytes in"}}
    >>> print(md_table(compression_table([row])).splitlines()[2])
    | m | d | 1.0000 | 2.5000 | 2.0000 | xz | 0.500 |
"""

from __future__ import annotations

from lm_eval_it.numfmt import interval, missing
from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.context.bins import MIN_BIN_TOKENS
from lm_eval_it.stats.intervals import INTERVAL_LABEL

# what the windows that ran scored in a bin (``coverage``, counted from the data: lm_eval_it.stats.context.bins)
COVERAGE = {"steady": "first and later windows", "partial": "partly first window only",
            "first_window_only": "first window only", None: "–"}


def _cell(v, iv, spec: str = ".4f") -> dict:
    """A value with its interval: ``lo–hi`` for positive metrics, ``[lo, hi]`` for signed ones."""
    if not iv or missing(v):
        return {"value": _f(v, spec), "interval": None}
    if spec.startswith("+"):
        return {"value": _f(v, spec), "interval": interval(iv, spec)}
    return {"value": _f(v, spec), "interval": f"{_f(iv[0], spec)}–{_f(iv[1], spec)}"}


def md_table(t: dict) -> str:
    """A table as Markdown: ``value (interval)`` cells, numbers right-aligned, ``|`` escaped."""
    def text(c) -> str:
        iv = c.get("interval") if isinstance(c, dict) else None
        s = c if not isinstance(c, dict) else c["value"] + ("" if not iv else f" {iv}" if iv[0] == "[" else f" ({iv})")
        return str(s).replace("|", "\\|").replace("\n", " ")

    left, texts = t.get("left", 1), t.get("text", ())
    lines = ["| " + " | ".join(t["headers"]) + " |",
             "|" + "|".join("---" if i < left or i in texts else "--:" for i in range(len(t["headers"]))) + "|"]
    return "\n".join(lines + ["| " + " | ".join(text(c) for c in r) + " |" for r in t["rows"]])


def by_dataset(rows: list[dict], key: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.get(key):
            out.setdefault(r["dataset"], []).append(r)
    return out


# ----------------------------------------------------------------------------- context length

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
                    _cell(b["bits_per_token"], b["bits_per_token_interval"]),
                    _cell(b["bits_per_byte"], b["bits_per_byte_interval"]),
                    _cell(g["bits_per_token"], g["interval"], "+.4f") if g else "–"])
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


# ----------------------------------------------------------------------------- compression

def compression_table(rows: list[dict]) -> dict:
    rows = [r for r in rows if r.get("compression")]
    names = list(dict.fromkeys(n for r in rows for n in r["compression"]["compressors"]))
    out = [[r["model"], r["dataset"], _f(r["metrics"]["bits_per_byte"])]
           + [_f(r["compression"]["compressors"].get(n, {}).get("bits_per_byte")) for n in names]
           + [r["compression"].get("best") or "–", _f(r["compression"].get("model_to_best_ratio"), ".3f")]
           for r in rows]
    return {"headers": ["model", "dataset", "model bits/byte"] + [f"{n} bits/byte" for n in names]
            + ["best compressor", "model ÷ best"], "rows": out, "left": 2, "text": [3 + len(names)]}


def compression_note(rows: list[dict]) -> str:
    d = next((r["compression"].get("definition") for r in rows if r.get("compression")), None)
    return (f"Compressor bits/byte: {d}. model ÷ best below 1 means the model codes this text in fewer bits than "
            "the best general-purpose compressor.") if d else ""


# ----------------------------------------------------------------------------- memorisation

def _groups_of(row: dict) -> dict:
    return {d["index"]: d.get("group") for d in row.get("per_document") or [] if "index" in d}


def memorisation_table(row: dict, excerpt: int = 200) -> dict:
    m, groups = row["memorisation"], _groups_of(row)
    grouped = any(g is not None for g in groups.values())
    out = []
    for f in m.get("flagged") or []:
        text = f.get("excerpt", "")
        text = text if len(text) <= excerpt else text[: excerpt - 1] + "…"
        out.append([str(f["doc"])] + ([str(groups.get(f.get("doc")))] if grouped else [])
                   + [", ".join(f["flags"]), _f(f.get("zlib_ratio"), ".3f"), _f(f.get("z_zlib_ratio"), "+.2f"),
                      _f(f.get("min_k"), ".3f"), _f(f.get("z_min_k"), "+.2f"), {"value": text, "wrap": True}])
    k = m.get("k_percent", 20)
    return {"headers": ["doc"] + (["group"] if grouped else []) + ["flagged by", "zlib ratio", "z", f"Min-{k:g}% ln p",
                                                                    "z", "excerpt"],
            "rows": out, "left": 3 if grouped else 2, "text": [7 if grouped else 6]}


def memorisation_note(row: dict) -> str:
    m = row["memorisation"]
    n = len(m.get("flagged") or [])
    head = (f"{n} document{'s' if n != 1 else ''} flagged" if n else "No document flagged")
    return (f"{head} (robust z ≥ {m.get('threshold_z', 3.5):g} in the suspicious direction; most flagged first). "
            f"{m.get('definition', '')}.")


def memorisation_line(row: dict) -> str:
    m = row["memorisation"]
    fl = m.get("flagged") or []
    line = f"{row['model']} · {row['dataset']}: {len(fl)} of {row['metrics'].get('docs', '?')} documents flagged"
    if fl:
        top, text = fl[0], " ".join(fl[0].get("excerpt", "").split())
        line += (f"; most: doc {top['doc']} ({', '.join(top['flags'])}, z {top['score']:+.1f}) "
                 f"{(text[:57] + '…') if len(text) > 58 else text!r}")
    return line


# ----------------------------------------------------------------------------- groups

def group_table(rows: list[dict]) -> dict:
    """One dataset's rows: per group docs, bytes and each model's bits/byte; micro and macro at the end.

    Groups sorted by the first model's bits/byte."""
    first = rows[0]["groups"]
    order = sorted(first["groups"], key=lambda g: first["groups"][g]["bits_per_byte"])
    def cell(r, g):
        s = r["groups"]["groups"].get(g)
        return _cell(s["bits_per_byte"], s["intervals"].get("bits_per_byte")) if s else "–"

    out = [[g, str(first["groups"][g]["docs"]), str(first["groups"][g]["bytes"])] + [cell(r, g) for r in rows]
           for g in order]
    out.append(["micro (all bytes)", str(first["micro"]["docs"]), str(first["micro"]["bytes"])]
               + [_cell(r["groups"]["micro"]["bits_per_byte"], r["groups"]["micro"]["bits_per_byte_interval"])
                  for r in rows])
    out.append([f"macro (mean of {first['macro']['groups']} groups)", "", ""]
               + [_cell(r["groups"]["macro"]["bits_per_byte"], r["groups"]["macro"]["bits_per_byte_interval"])
                  for r in rows])
    return {"headers": ["group", "docs", "bytes"] + [f"{r['model']} bits/byte" for r in rows], "rows": out}


GROUP_NOTE = ("micro: all NLL over all bytes (large groups weigh more): the dataset's bits/byte, with the dataset's "
              "interval; macro: mean of the groups' bits/byte (each group weighs the same). Intervals: 95% Student-t "
              "over documents (linearised variance): a group's from its own documents, the macro's from each "
              "group's own spread (conservative Welch df). A group with fewer than 2 scored documents is too small "
              "for a variance of its own (no interval in its row), and the macro figure then has none either.")


# ----------------------------------------------------------------------------- rendering

def insights_markdown(rows: list[dict], terminal: bool = False) -> str:
    """summary.md's sections for context length, compression, memorisation and groups ('' if none).

    ``terminal=True``: the short form for the console (bits/token per bin, compression, one line of
    memorisation per model × dataset, per-group bits/byte)."""
    out = []
    ctx = [r for r in rows if r.get("context_length")]
    if ctx:
        out += ["## NLL by context length", ""]
        if terminal:
            out += [md_table(context_terminal_table(ctx)), "",
                    "bits/token per context-length bin (tokens); * bins holding lengths scored only in documents' "
                    f"first windows; n=…: a bin with fewer than {MIN_BIN_TOKENS} scored tokens, too few to read.", ""]
        else:
            for r in ctx:
                out += [f"### {r['model']} · {r['dataset']}", "", md_table(context_table(r)), "", context_note(r), ""]
    if any(r.get("compression") for r in rows):
        out += ["## Compression baselines", "", md_table(compression_table(rows)), "", compression_note(rows), ""]
    mem = [r for r in rows if r.get("memorisation")]
    if mem:
        out += ["## Memorisation signals", ""]
        if terminal:
            out += [memorisation_line(r) for r in mem] + [""]
        else:
            for r in mem:
                out += [f"### {r['model']} · {r['dataset']}", "", memorisation_note(r), ""]
                if r["memorisation"].get("flagged"):
                    out += [md_table(memorisation_table(r, excerpt=80)), ""]
    for name, grp in by_dataset(rows, "groups").items():
        out += [f"## Groups · {name}", "", md_table(group_table(grp)), "", GROUP_NOTE, ""]
    return "\n".join(out)


def insights_sections(results: dict, plots: bool = True) -> list[tuple[str, str]]:
    """(title, HTML) sections for report.html, with the context-length and per-group plots."""
    from lm_eval_it.report.html import render
    from lm_eval_it.report.plots import context_length_plot, group_plot

    rows, comparison = results["results"], results.get("comparison") or []
    out = []
    for name, grp in by_dataset(rows, "context_length").items():
        blocks = [{"png": context_length_plot(grp) if plots else None,
                   "alt": f"bits per token against context length · {name}"}]
        for r in grp:
            blocks += [{"h3": r["model"]}, {"table": context_table(r)}]
        blocks.append({"note": context_note(grp[0])})
        out.append((f"NLL by context length · {name}", render("insight_section.html.j2", blocks=blocks)))
    if any(r.get("compression") for r in rows):
        out.append(("Compression baselines", render("insight_section.html.j2", blocks=[
            {"table": compression_table(rows)}, {"note": compression_note(rows)}])))
    for name, grp in by_dataset(rows, "memorisation").items():
        blocks = []
        for r in grp:
            blocks += [{"h3": r["model"]}, {"note": memorisation_note(r)}]
            if r["memorisation"].get("flagged"):
                blocks.append({"table": memorisation_table(r)})
        out.append((f"Memorisation signals · {name}", render("insight_section.html.j2", blocks=blocks)))
    for name, grp in by_dataset(rows, "groups").items():
        table = next((t for t in comparison if t["dataset"] == name), None)
        png = group_plot(grp, table) if plots else None
        out.append((f"Groups · {name}", render("insight_section.html.j2", blocks=[
            {"table": group_table(grp)}, {"note": GROUP_NOTE},
            {"png": png, "alt": ("Δ bits/byte per group against " + table["baseline"] if table and len(grp) > 1
                                 else "bits/byte per group") + f" · {name}"}])))
    return out
