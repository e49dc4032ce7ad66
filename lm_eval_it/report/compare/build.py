"""Comparison tables: models (and runs) side by side on the same documents.

For each dataset the models are sorted by bits per byte, each with a 95%
Student-t interval over documents (:mod:`lm_eval_it.stats.intervals`: linearised variance,
Bell–McCaffrey degrees of freedom), and with Δ bits per byte against a baseline model
and a **paired** interval of that Δ (the same construction on the per-document
differences). A Δ is significant when its
interval excludes 0. Each model also gets its ratio to the best compressor, its gain from
64 to 1024 tokens of context and, on grouped datasets, per-group Δ
(:mod:`lm_eval_it.report.compare.extras`). Token-level figures are flagged as not comparable when
the models' tokenizers differ. Fertility (tokens per byte and per word, bytes
per token) shows why. Each model's dtype, quantisation and backend are shown beside it
(they are the model's, not the protocol's); runs are refused only when their protocols
differ (:mod:`lm_eval_it.report.compare.runs`). Models that scored different bytes (``prefix: none``
with different tokenizers) are flagged: their bits/byte are not over the same bytes.

Rendered as Markdown, CSV and a self-contained HTML page: a compact main table, the
detail tables (:mod:`lm_eval_it.report.compare.tables`) and a dot plot with intervals
(:func:`lm_eval_it.report.plots.comparison_plot`).

Example::

    tables = build_comparison(results["results"], baseline="SmolLM2", models=results["models"])
    write_comparison(folder, tables)       # comparison.md / .csv / .html
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from lm_eval_it.errors import UserError
from lm_eval_it.io import atomic_write_text as atomic_write
from lm_eval_it.report.compare import tables as compare_tables
from lm_eval_it.report.compare.extras import (
    GROUP_NOTE,
    INSIGHT_NOTE,
    entry_extras,
    group_tables,
    groups_csv,
)
from lm_eval_it.report.compare.runs import model_facts, protocol_text
from lm_eval_it.report.html import render
from lm_eval_it.report.plots import (
    comparison_plot,  # matplotlib loads only when a page is drawn
)
from lm_eval_it.stats.intervals import (
    MIN_DOCUMENTS,
    bits_per_byte_interval,
    paired_delta,
)
from lm_eval_it.stats.metrics import same_scored_bytes
from lm_eval_it.stats.registry import compare_columns
from lm_eval_it.report.views_sections import comparison_views, view_sources  # noqa: F401 - view_sources: for the CLI


def _arrays(row: dict) -> tuple[list[float], list[int]]:
    docs = row["per_document"]
    return [d["nll"] for d in docs], [d["bytes"] for d in docs]


def protocol_mismatch(group: list[dict]) -> str | None:
    """How the runs' protocols differ on one dataset, or ``None``.

    Each run contributes the set of its rows' protocols (models of one run may differ, e.g. in a
    window clamped to a model's positions); runs agree when one set contains the other. A model's
    dtype, quantisation and backend are not part of the protocol.
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


def build_comparison(rows: list[dict], baseline: str | None = None, allow_protocol_mismatch: bool = False,
                     models: list[dict] | None = None) -> list[dict]:
    """One table per dataset; refuses to pair documents whose fingerprints differ, or runs whose protocols do.

    Each model's dtype, backend and GGUF file come from ``row["model_facts"]`` (rows of several runs) or
    from ``models`` (``models[]`` of one run's results.json)."""
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
            facts = r.get("model_facts") or model_facts(models, r["model"])
            entries.append({
                "model": r["model"],
                "bits_per_byte": m["bits_per_byte"],
                "bits_per_byte_ci": bits_per_byte_interval(nll, nbytes),
                "delta": None if r is base else paired_delta(nll, nbytes, b_nll, b_bytes),
                **{k: m[k] for k in ("bits_per_char", "bits_per_word", "word_perplexity", "token_perplexity",
                                     "bits_per_token", "tokens_per_byte", "tokens_per_word", "bytes_per_token",
                                     "tokens", "bytes", "docs")},
                "documents_scored": scored_documents(r, nbytes),
                "vocab_size": (r.get("tokenizer") or {}).get("vocab_size"),
                "prefix": r["eval"]["prefix"],
                "window": r["eval"]["window"],
                "lossy_documents": (r.get("roundtrip") or {}).get("lossy_documents", 0),
                "run": r.get("run"),
                "protocol": r.get("protocol"),
                **entry_extras(r, base),
                **facts,
                "stride": r["eval"].get("stride"),
                "tokens_per_second": (r.get("timing") or {}).get("tokens_per_second"),
            })
        entries.sort(key=lambda e: e["bits_per_byte"])
        tables.append({"dataset": name, "dataset_fingerprint": prints.pop(), "baseline": base["model"],
                       "token_comparable": len(tok_prints) == 1 and None not in tok_prints, "rows": entries,
                       "protocol_mismatch": mismatch, "same_bytes": same_scored_bytes(group)})
    return tables


# ----------------------------------------------------------------------------- rendering

def scored_documents(r: dict, nbytes) -> int:
    """Documents behind the row's intervals: the ``documents`` its intervals used, else those that scored bytes."""
    n = (r.get("intervals") or {}).get("documents")
    return int(n) if n is not None else int(sum(1 for b in nbytes if b > 0))


def _note(t: dict) -> str:
    n = min(e.get("documents_scored", e["docs"]) for e in t["rows"])  # scored documents: the intervals' sample
    note = (f"{n} documents; intervals: 95% Student-t over documents (linearised variance, Bell–McCaffrey "
            f"degrees of freedom), paired for Δ; "
            f"Δ against {t['baseline']}. {INSIGHT_NOTE}")
    if n < MIN_DOCUMENTS:
        note += (f" Few documents ({n} < {MIN_DOCUMENTS}): the intervals are shown, but no difference is marked "
                 "significant.")
    runs = {e["run"]: e["protocol"] for e in t["rows"] if e.get("run") and e.get("protocol")}
    if t.get("protocol_mismatch"):
        note += " Protocols: " + "; ".join(f"{e['model']}: {protocol_text(e['protocol'])}"
                                          for e in t["rows"] if e.get("protocol")) + "."
    elif len(runs) > 1:
        note += f" Protocol (every run): {' | '.join(sorted({protocol_text(p) for p in runs.values()}))}."
    if t.get("protocol_mismatch"):
        note += " The runs' protocols DIFFER (compared with --allow-protocol-mismatch): differences may not be the models'."
    if not t["token_comparable"]:
        note += " † The tokenizers differ: token perplexity is not comparable across these models; use bits/byte."
    if any(e["lossy_documents"] for e in t["rows"]):
        note += " Some tokenizers are lossy here (lossy docs > 0): their bits/byte is over normalised text."
    if not t.get("same_bytes", True):
        note += " " + bytes_note(t)
    return note


def bytes_note(t: dict) -> str:
    """Why a table's models scored different bytes, and what that means for bits/byte and Δ."""
    counts = "; ".join(f"{e['model']}: {e['bytes']:,}" for e in t["rows"])
    why = ("with prefix none each tokenizer's first token of a document is context only, and it covers different "
           "bytes per tokenizer" if any(e["prefix"] == "none" for e in t["rows"]) else "the scored text differs")
    return (f"‡ The models scored different bytes ({counts}): {why}. Their bits/byte, and the Δ bits/byte, are "
            "not over the same bytes (Δ is still paired by document); prefix auto scores every byte for every model.")


def comparison_markdown(tables: list[dict]) -> str:
    out = []
    for t in tables:
        (_, main), *details = compare_tables.tables(t, html=False, extra_columns=compare_columns())
        out += [f"### {t['dataset']}", "", *compare_tables.markdown(main), "", _note(t), ""]
        for title, d in details:
            out += [f"#### {title}", "", *compare_tables.markdown(d), ""]
        for title, g in group_tables(t):
            out += [f"#### {title}", "", *compare_tables.markdown(g), ""]
        out += [GROUP_NOTE, ""] if group_tables(t) else []
    return "\n".join(out)


def comparison_csv(tables: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    # the statistics' comparison fields (compare_columns) that some row has, as comparison.md/html show them
    extra = [c for c in compare_columns() if any(e.get(c[0]) is not None for t in tables for e in t["rows"])]
    w.writerow(["dataset", "model", "bits_per_byte", "bpb_low", "bpb_high", "delta_bpb", "delta_low", "delta_high",
                "significant", "bits_per_char", "bits_per_word", "word_perplexity", "token_perplexity",
                "token_comparable", "vocab_size", "tokens_per_byte", "tokens_per_word", "bytes_per_token", "window",
                "lossy_documents", "model_to_best_compressor", "gain_64_1024", "gain_low", "gain_high",
                "dtype", "backend", "gguf_file", "bytes", "same_bytes", "tokens_per_second", "stride", "prefix"]
               + [k for k, _, _ in extra])
    for t in tables:
        for e in t["rows"]:
            ci, d = e["bits_per_byte_ci"] or [None, None], e["delta"] or {}
            g = e.get("gain_64_1024") or {}
            giv = g.get("interval") or [None, None]
            w.writerow([t["dataset"], e["model"], e["bits_per_byte"], ci[0], ci[1], d.get("delta"), d.get("low"),
                        d.get("high"), d.get("significant"), e["bits_per_char"], e["bits_per_word"],
                        e["word_perplexity"], e["token_perplexity"], t["token_comparable"], e["vocab_size"],
                        e["tokens_per_byte"], e["tokens_per_word"], e["bytes_per_token"], e["window"],
                        e["lossy_documents"], e.get("compression_ratio"), g.get("gain"), giv[0], giv[1],
                        e.get("dtype"), e.get("backend"), e.get("gguf_file"), e["bytes"], t.get("same_bytes", True),
                        e.get("tokens_per_second"), e.get("stride"), e["prefix"]] + [e.get(k) for k, _, _ in extra])
    return buf.getvalue()


def comparison_sections(tables: list[dict], views: dict | None = None, show: int = 3,
                        strict: bool = False) -> list[tuple[str, str]]:
    """(dataset, HTML) per table: the main table with intervals and paired Δ, the note, the plot, the details;
    with ``views`` ({(model, dataset): ViewSource}, :func:`lm_eval_it.report.views_sections.view_sources`) the
    difference views against the baseline too (:func:`lm_eval_it.report.views_sections.comparison_views`)."""
    out = []
    for t in tables:
        (_, main), *details = compare_tables.tables(t, html=True, extra_columns=compare_columns())
        html = render("comparison_section.html.j2", dataset=t["dataset"], note=_note(t), png=comparison_plot(t),
                      t=main, details=details, groups=group_tables(t), group_note=GROUP_NOTE, baseline=t["baseline"])
        extra = comparison_views(t, views, show, strict) if views is not None else ""
        out.append((t["dataset"], html + ("\n" + extra if extra else "")))
    return out


def comparison_html(tables: list[dict], title: str = "lm_eval_it comparison", views: dict | None = None,
                    show: int = 3, strict: bool = False) -> str:
    return render("comparison.html.j2", title=title, sections=comparison_sections(tables, views, show, strict))


def write_comparison(folder: Path, tables: list[dict], title: str = "lm_eval_it comparison",
                     views: dict | None = None, show: int = 3, strict: bool = False) -> None:
    """comparison.md, .csv, .html (with ``views``: the difference views, see :func:`comparison_sections`)."""
    folder = Path(folder)
    html = comparison_html(tables, title, views, show, strict)  # first: a strict refusal writes nothing
    atomic_write(folder / "comparison.md", f"# {title}\n\n" + comparison_markdown(tables))
    atomic_write(folder / "comparison.csv", comparison_csv(tables))
    atomic_write(folder / "comparison.html", html)
    if groups_csv(tables):
        atomic_write(folder / "comparison_groups.csv", groups_csv(tables))
