"""Comparison tables: models (and runs) side by side on the same documents.

For each dataset the models are sorted by bits per byte, each with a 95%
Student-t interval over documents (:mod:`lm_eval_it.stats`: linearised variance,
Bell–McCaffrey degrees of freedom), and with Δ bits per byte against a baseline model
and a **paired** interval of that Δ (the same construction on the per-document
differences). A Δ is significant when its
interval excludes 0. Each model also gets its ratio to the best compressor, its gain from
64 to 1024 tokens of context and, on grouped datasets, per-group Δ
(:mod:`lm_eval_it.compare_insights`). Token-level figures are flagged as not comparable when
the models' tokenizers differ. Fertility (tokens per byte and per word, bytes
per token) shows why.

Rendered as Markdown, CSV and a self-contained HTML page (plot embedded).

Example::

    tables = build_comparison(results["results"], baseline="SmolLM2")
    write_comparison(folder, tables)       # comparison.md / .csv / .html
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from .compare_insights import GROUP_NOTE, INSIGHT_NOTE, entry_extras, gain_text, group_tables, groups_csv
from .errors import UserError
from .io import atomic_write_text as atomic_write
from .report import render
from .stats import MIN_DOCUMENTS, bits_per_byte_interval, paired_delta


def _arrays(row: dict) -> tuple[list[float], list[int]]:
    docs = row["per_document"]
    return [d["nll"] for d in docs], [d["bytes"] for d in docs]


def protocol_mismatch(group: list[dict]) -> str | None:
    """How the runs' protocols differ on one dataset, or ``None``.

    Each run contributes the set of its rows' protocols (models of one run may differ,
    e.g. in dtype); runs agree when one set contains the other.
    """
    by_run: dict[str, set[str]] = {}
    for r in group:
        if r.get("run") and r.get("protocol"):
            by_run.setdefault(r["run"], set()).add(protocol_text(r["protocol"]))
    runs = list(by_run.items())
    for i, (ra, a) in enumerate(runs):
        for rb, b in runs[i + 1:]:
            if not (a <= b or b <= a):
                return f"{ra}: {' | '.join(sorted(a))}; {rb}: {' | '.join(sorted(b))}"
    return None


def build_comparison(rows: list[dict], baseline: str | None = None,
                     allow_protocol_mismatch: bool = False) -> list[dict]:
    """One table per dataset; refuses to pair documents whose fingerprints differ, or runs whose protocols do."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["dataset"], []).append(r)
    tables = []
    for name, group in groups.items():
        prints = {r["dataset_fingerprint"] for r in group}
        if len(prints) > 1:
            who = ", ".join(f"{r['model']}: {r['dataset_fingerprint'][:12]}" for r in group)
            raise UserError(f"dataset {name!r} differs between the results ({who}); "
                            "documents can only be paired on identical text")
        mismatch = protocol_mismatch(group)
        if mismatch and not allow_protocol_mismatch:
            raise UserError(f"dataset {name!r}: the runs were scored under different protocols ({mismatch}); "
                            "rerun one to match, or pass --allow-protocol-mismatch to compare anyway")
        base = next((r for r in group if r["model"] == baseline), group[0])
        b_nll, b_bytes = _arrays(base)
        tok_prints = {(r.get("tokenizer") or {}).get("fingerprint") for r in group}
        entries = []
        for r in group:
            nll, nbytes = _arrays(r)
            m = r["metrics"]
            entries.append({
                "model": r["model"],
                "bits_per_byte": m["bits_per_byte"],
                "bits_per_byte_ci": bits_per_byte_interval(nll, nbytes),
                "delta": None if r is base else paired_delta(nll, nbytes, b_nll, b_bytes),
                **{k: m[k] for k in ("bits_per_char", "bits_per_word", "word_perplexity", "token_perplexity",
                                     "bits_per_token", "tokens_per_byte", "tokens_per_word", "bytes_per_token",
                                     "tokens", "bytes", "docs")},
                "vocab_size": (r.get("tokenizer") or {}).get("vocab_size"),
                "prefix": r["eval"]["prefix"],
                "window": r["eval"]["window"],
                "lossy_documents": (r.get("roundtrip") or {}).get("lossy_documents", 0),
                "run": r.get("run"),
                "protocol": r.get("protocol"),
                **entry_extras(r, base),
            })
        entries.sort(key=lambda e: e["bits_per_byte"])
        tables.append({"dataset": name, "dataset_fingerprint": prints.pop(), "baseline": base["model"],
                       "token_comparable": len(tok_prints) == 1 and None not in tok_prints, "rows": entries,
                       "protocol_mismatch": mismatch})
    return tables


# ----------------------------------------------------------------------------- rendering

def _ci(iv) -> str:
    return "–" if not iv else f"[{iv[0]:.4f}, {iv[1]:.4f}]"


def _delta(d: dict | None) -> tuple[str, str, str]:
    if d is None:
        return "baseline", "", ""
    ci = "–" if d["low"] is None else f"[{d['low']:+.4f}, {d['high']:+.4f}]"
    if d.get("few_documents"):
        sig = "n/a (few docs)"
    else:
        sig = "" if d["significant"] is None else ("yes" if d["significant"] else "no")
    return f"{d['delta']:+.4f}", ci, sig


HEADERS = ["model", "bits/byte", "95% CI", "Δ bits/byte", "Δ 95% CI", "significant", "÷ best compressor",
           "gain 64→1024 bits/token", "bits/char", "bits/word",
           "word ppl", "token ppl", "vocab", "tokens/byte", "tokens/word", "bytes/token", "window", "lossy docs"]


def _cells(e: dict, token_comparable: bool) -> list[str]:
    d, dci, sig = _delta(e["delta"])
    tppl = f"{e['token_perplexity']:.3f}" + ("" if token_comparable else "†")
    ratio = "–" if e.get("compression_ratio") is None else f"{e['compression_ratio']:.3f}"
    return [e["model"], f"{e['bits_per_byte']:.4f}", _ci(e["bits_per_byte_ci"]), d, dci, sig, ratio,
            gain_text(e.get("gain_64_1024")),
            f"{e['bits_per_char']:.4f}", f"{e['bits_per_word']:.4f}", f"{e['word_perplexity']:.2f}", tppl,
            str(e["vocab_size"]), f"{e['tokens_per_byte']:.4f}", f"{e['tokens_per_word']:.3f}",
            f"{e['bytes_per_token']:.3f}", str(e["window"]), str(e["lossy_documents"])]


def _note(t: dict) -> str:
    n = t["rows"][0]["docs"]
    note = (f"{n} documents; intervals: 95% Student-t over documents (linearised variance, Bell–McCaffrey "
            f"degrees of freedom), paired for Δ; "
            f"Δ against {t['baseline']}. {INSIGHT_NOTE}")
    if n < MIN_DOCUMENTS:
        note += (f" Few documents ({n} < {MIN_DOCUMENTS}): the intervals are shown, but no difference is marked "
                 "significant.")
    runs = {e["run"]: e["protocol"] for e in t["rows"] if e.get("run") and e.get("protocol")}
    if len(runs) > 1 or t.get("protocol_mismatch"):
        note += " Protocols: " + "; ".join(f"{e['model']}: {protocol_text(e['protocol'])}"
                                          for e in t["rows"] if e.get("protocol")) + "."
    if t.get("protocol_mismatch"):
        note += " The runs' protocols DIFFER (compared with --allow-protocol-mismatch): differences may not be the models'."
    if not t["token_comparable"]:
        note += " † The tokenizers differ: token perplexity is not comparable across these models; use bits/byte."
    if any(e["lossy_documents"] for e in t["rows"]):
        note += " Some tokenizers are lossy here (lossy docs > 0): their bits/byte is over normalised text."
    return note


def comparison_markdown(tables: list[dict]) -> str:
    out = []
    for t in tables:
        out += [f"### {t['dataset']}", "", "| " + " | ".join(HEADERS) + " |",
                "|---|" + "|".join("--:" for _ in HEADERS[1:]) + "|"]
        out += ["| " + " | ".join(_cells(e, t["token_comparable"])) + " |" for e in t["rows"]]
        out += ["", _note(t), ""]
        for title, g in group_tables(t):
            out += [f"#### {title}", "", "| " + " | ".join(g["headers"]) + " |",
                    "|---|" + "|".join("--:" for _ in g["headers"][1:]) + "|"]
            out += ["| " + " | ".join(c) + " |" for c in g["rows"]] + [""]
        out += [GROUP_NOTE, ""] if group_tables(t) else []
    return "\n".join(out)


def comparison_csv(tables: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dataset", "model", "bits_per_byte", "bpb_low", "bpb_high", "delta_bpb", "delta_low", "delta_high",
                "significant", "bits_per_char", "bits_per_word", "word_perplexity", "token_perplexity",
                "token_comparable", "vocab_size", "tokens_per_byte", "tokens_per_word", "bytes_per_token", "window",
                "lossy_documents", "model_to_best_compressor", "gain_64_1024", "gain_low", "gain_high"])
    for t in tables:
        for e in t["rows"]:
            ci, d = e["bits_per_byte_ci"] or [None, None], e["delta"] or {}
            g = e.get("gain_64_1024") or {}
            giv = g.get("interval") or [None, None]
            w.writerow([t["dataset"], e["model"], e["bits_per_byte"], ci[0], ci[1], d.get("delta"), d.get("low"),
                        d.get("high"), d.get("significant"), e["bits_per_char"], e["bits_per_word"],
                        e["word_perplexity"], e["token_perplexity"], t["token_comparable"], e["vocab_size"],
                        e["tokens_per_byte"], e["tokens_per_word"], e["bytes_per_token"], e["window"],
                        e["lossy_documents"], e.get("compression_ratio"), g.get("gain"), giv[0], giv[1]])
    return buf.getvalue()


def _plot_png(t: dict) -> bytes:
    from .plots import _png, plt

    rows = t["rows"][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.8 + 0.45 * len(rows)))
    vals = [e["bits_per_byte"] for e in rows]
    cis = [e["bits_per_byte_ci"] or [v, v] for v, e in zip(vals, rows)]
    err = [[v - c[0] for v, c in zip(vals, cis)], [c[1] - v for v, c in zip(vals, cis)]]
    ax.barh([e["model"] for e in rows], vals, xerr=err, color="#4878a8", capsize=3)
    ax.set_xlabel("bits per byte (lower is better), 95% t interval over documents")
    ax.set_title(t["dataset"])
    return _png(fig)


def comparison_sections(tables: list[dict]) -> list[tuple[str, str]]:
    """(dataset, HTML) per table: the table with intervals and paired Δ, the note, the plot."""
    return [(t["dataset"], render("comparison_section.html.j2", dataset=t["dataset"], note=_note(t), png=_plot_png(t),
                                  t={"headers": HEADERS, "rows": [_cells(e, t["token_comparable"]) for e in t["rows"]]},
                                  groups=group_tables(t), group_note=GROUP_NOTE)) for t in tables]


def comparison_html(tables: list[dict], title: str = "lm_eval_it comparison") -> str:
    return render("comparison.html.j2", title=title, sections=comparison_sections(tables))


def write_comparison(folder: Path, tables: list[dict], title: str = "lm_eval_it comparison") -> None:
    folder = Path(folder)
    atomic_write(folder / "comparison.md", f"# {title}\n\n" + comparison_markdown(tables))
    atomic_write(folder / "comparison.csv", comparison_csv(tables))
    atomic_write(folder / "comparison.html", comparison_html(tables, title))
    if groups_csv(tables):
        atomic_write(folder / "comparison_groups.csv", groups_csv(tables))


# ----------------------------------------------------------------------------- across runs

def _newest_complete(folder: Path) -> Path | None:
    import json

    def key(p: Path):
        stamp, _, n = p.parent.name.partition("-")
        return stamp, int(n) if n.isdigit() else 0

    for f in sorted(folder.glob("*/results.json"), key=key, reverse=True):
        try:
            if json.loads(f.read_text()).get("complete"):
                return f
        except (OSError, ValueError):
            continue
    return None


def find_results(path: str | Path, base: str | Path = "results") -> Path:
    """``results.json`` of a run folder, or of the newest complete run of a run name (a folder, or a name under ``base``)."""
    from .errors import did_you_mean

    p = Path(path)
    if not p.exists() and (Path(base) / p).exists():
        p = Path(base) / p
    if (p / "results.json").is_file():
        return p / "results.json"
    if p.is_dir():
        found = _newest_complete(p)
        if found is not None:
            return found
        raise UserError(f"{str(p)!r} holds no complete run (expected results/<run>/<timestamp>/results.json)")
    names = sorted(d.name for d in Path(base).iterdir() if d.is_dir()) if Path(base).is_dir() else []
    raise UserError(f"{str(path)!r} is neither a run folder nor a run name under {str(base)!r} "
                    f"(run names there: {', '.join(names) or 'none'}){did_you_mean(str(path), names)}")


def run_protocol(row: dict, models: list[dict]) -> dict:
    """What a row's numbers depend on besides the model and text: window, stride, prefix, window unit, dtype."""
    ev = row.get("eval") or {}
    dtype = next((m.get("dtype") for m in models if m.get("name") == row["model"]), None)
    return {"window": ev.get("window"), "stride": ev.get("stride"), "prefix": str(ev.get("prefix", "")).split(":")[0],
            "window_unit": ev.get("window_unit", "tokens"), "dtype": dtype}


def protocol_text(proto: dict) -> str:
    return (f"window {proto['window']} {proto['window_unit']}, stride {proto['stride']}, prefix {proto['prefix']}, "
            f"dtype {proto['dtype']}")


def rows_from_runs(paths: list[str], base: str | Path = "results") -> list[dict]:
    """All result rows of several runs, each with its ``run`` label and ``protocol``.

    Model names that collide get the run label appended.
    """
    import json

    loaded = []
    for path in paths:
        f = find_results(path, base)
        data = json.loads(f.read_text())
        if not data.get("complete"):
            raise UserError(f"{f} is not a complete run; finish or resume it before comparing")
        label = f"{data['run_name']}/{f.parent.name}"
        rows = [dict(r, run=label, protocol=run_protocol(r, data.get("models") or [])) for r in data["results"]]
        loaded.append((label, rows))
    counts: dict[tuple, int] = {}
    for _, rows in loaded:
        for r in rows:
            counts[(r["model"], r["dataset"])] = counts.get((r["model"], r["dataset"]), 0) + 1
    out = []
    for label, rows in loaded:
        for r in rows:
            if counts[(r["model"], r["dataset"])] > 1:
                r["model"] = f"{r['model']} @ {label}"
            out.append(r)
    return out
