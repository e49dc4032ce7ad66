"""``lm-eval-it show RUN [--doc N] [--compare OTHER]``: a run's token-level views printed in the terminal.

Reads ``results.json`` of a run folder (or the newest complete run of a run name, as ``compare`` does)
and the ``views-*.npz`` files its rows name. Without ``--compare``: for each (model, dataset) row with
views, the surprisal view of the documents :func:`~lm_eval_it.views.select.surprisal_documents` chooses
(the memorisation block's flagged documents and the config's ``output.views.documents`` included) or of
``--doc N`` only. With ``--compare``: the difference view of A (the row of RUN) and B (the row of OTHER on
the same dataset), then the top lists by words and by A's tokens. Colour when stdout is a terminal (not
with ``--plain`` or ``NO_COLOR``); paged through ``$PAGER`` (default ``less -R``) when the output is
longer than the terminal, never when stdout is not a terminal. Bad input raises a one-line ``UserError``.

Example::

    show("results/quickstart", doc=3)                          # colour on a terminal, plain in a log
    text = show_text("results/runA", compare="results/runB", colour=False, width=100)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from lm_eval_it.errors import UserError, did_you_mean
from lm_eval_it.report.compare.runs import find_results
from lm_eval_it.report import views_terminal as terminal
from lm_eval_it.views import store
from lm_eval_it.views.select import aligned_pair, check_same_documents, difference_documents, \
    surprisal_documents, top_lists

ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def show(run: str, *, doc: int | None = None, compare: str | None = None, model: str | None = None,
         dataset: str | None = None, other_model: str | None = None, plain: bool = False,
         base: str = "results", out=None, tty: bool | None = None) -> None:
    """Print the views to ``out`` (stdout): colour and paging only when ``tty`` (default: ``out.isatty()``)."""
    out = sys.stdout if out is None else out
    tty = out.isatty() if tty is None else tty
    colour = tty and not plain and not os.environ.get("NO_COLOR")
    cols, rows = shutil.get_terminal_size((100, 24))
    text = show_text(run, doc=doc, compare=compare, model=model, dataset=dataset, other_model=other_model,
                     colour=colour, width=max(cols, 20), base=base)
    if wants_pager(text, tty, rows):
        page(text, out)
    else:
        write(text, out)


def write(text: str, out) -> None:
    """Write and flush; a reader that stops early (``| head``) ends the output quietly, as for ``cat``."""
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        if out is sys.stdout:  # the interpreter's own flush at exit must not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def wants_pager(text: str, tty: bool, rows: int) -> bool:
    """Only on a terminal, and only when the text has more lines than it."""
    return tty and text.count("\n") > rows


def page(text: str, out) -> None:
    """Through ``$PAGER`` (default ``less -R``; ``LESS`` defaults to ``FRX``); written directly if it cannot start."""
    env = dict(os.environ)
    env.setdefault("LESS", "FRX")
    try:
        subprocess.run(shlex.split(os.environ.get("PAGER") or "less -R"), input=text.encode("utf-8"), env=env,
                       check=False)
    except OSError:
        write(text, out)


def show_text(run: str, *, doc: int | None = None, compare: str | None = None, model: str | None = None,
              dataset: str | None = None, other_model: str | None = None, colour: bool = False,
              width: int = 100, base: str = "results") -> str:
    """The whole output as one string (ending in a newline)."""
    a = read_run(run, base)
    if compare is None:
        lines, rows = [], pick(a, model, dataset)
        if doc is not None and dataset is None:  # --doc alone: the datasets that have a document N
            rows = [r for r in rows if 0 <= doc < int(r.get("documents") or 0)] or rows
        for row in rows:
            lines += surprisal_section(a, row, doc, colour, width)
    else:
        lines = difference_section(a, read_run(compare, base), doc, model, dataset, other_model, colour, width)
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- runs and rows
def read_run(path: str, base: str) -> dict:
    """``{"folder", "label", "data", "rows"}``: the run's results and its rows that have views."""
    results = find_results(path, base)
    try:
        data = json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{results}: cannot be read ({e})") from None
    rows = [r for r in data.get("results", []) if r.get("views")]
    if not rows:
        raise UserError(f"{results.parent} has no token-level views (output.views was off, or the run predates "
                        f"them): rerun it to record them")
    return {"folder": results.parent, "label": str(path), "data": data, "rows": rows}


def pick(run: dict, model: str | None, dataset: str | None, flag: str = "--model") -> list[dict]:
    """The run's rows with views of ``model`` and ``dataset`` (each: all when None)."""
    rows = run["rows"]
    for key, want, name in (("model", model, flag), ("dataset", dataset, "--dataset")):
        if want is None:
            continue
        names = sorted({r[key] for r in rows})
        if want not in names:
            raise UserError(f"{name}: got {want!r}, expected one of {names} (the rows of {run['label']} with "
                            f"views){did_you_mean(want, names)}")
        rows = [r for r in rows if r[key] == want]
    return rows


def views_of(run: dict, row: dict) -> store.ViewSet:
    path = Path(run["folder"]) / row["views"]["file"]
    if not path.is_file():
        raise UserError(f"{path}: the views file of {row['model']} on {row['dataset']} is missing")
    return store.load(path)


def views_config(run: dict) -> dict:
    """The run's ``output.views`` (show, documents), with the defaults where the config lacks them."""
    cfg = ((run["data"].get("config") or {}).get("output") or {}).get("views") or {}
    return {"show": int(cfg.get("show", 3)), "documents": list(cfg.get("documents", []))}


def recorded(vs: store.ViewSet, doc: int) -> None:
    if not 0 <= doc < vs.dataset_docs:
        raise UserError(f"--doc {doc}: {vs.dataset} has {vs.dataset_docs} documents (0 to {vs.dataset_docs - 1})")
    if doc not in vs.docs:
        listed = ", ".join(map(str, sorted(vs.docs)[:12])) + (", …" if len(vs.docs) > 12 else "")
        raise UserError(f"--doc {doc}: not recorded in the views of {vs.model} on {vs.dataset} (recorded: "
                        f"{listed}); name it in output.views.documents and rerun")


# ---------------------------------------------------------------- the sections
def surprisal_section(run: dict, row: dict, doc: int | None, colour: bool, width: int) -> list[str]:
    """One row's surprisal views: a title, the legend, then each document with its header."""
    vs, cfg = views_of(run, row), views_config(run)
    if doc is not None:
        recorded(vs, doc)
        picks = [(doc, "named with --doc")]
    else:
        flagged = [int(f["doc"]) for f in (row.get("memorisation") or {}).get("flagged") or []]
        picks = surprisal_documents(vs, cfg["show"], flagged, cfg["documents"])
    scale = terminal.surprisal_scale([vs.docs[d] for d, _ in picks])
    lines = [title(f"{vs.model} on {vs.dataset}: surprisal, each token's NLL in bits ({run['folder']})", colour),
             terminal.legend(scale, colour, "bits per token"), ""]
    for d, why in picks:
        v = vs.docs[d]
        lines += [doc_header(v, why, colour), f"   {terminal.top_tokens(v)}",
                  *terminal.surprisal_lines(v, scale, colour, width), ""]
    return lines


def difference_section(a_run: dict, b_run: dict, doc, model, dataset, other_model, colour, width) -> list[str]:
    """The difference views of each dataset of A against B, then the top lists."""
    lines = []
    a_rows = pick(a_run, model, dataset)
    if len({r["model"] for r in a_rows}) > 1:
        names = sorted({r["model"] for r in a_rows})
        raise UserError(f"{a_run['label']} has views of several models ({', '.join(names)}): pick A with --model")
    for ra in a_rows:
        rb = partner(a_run, ra, b_run, other_model)
        a, b = views_of(a_run, ra), views_of(b_run, rb)
        check_same_documents(a, b)
        lines += difference_views(a, b, doc, views_config(a_run)["show"], colour, width)
    return lines


def partner(a_run: dict, ra: dict, b_run: dict, other_model: str | None) -> dict:
    """B: the row of the other run on A's dataset (``--other-model`` picks among several), never A itself."""
    same_run = Path(a_run["folder"]).resolve() == Path(b_run["folder"]).resolve()
    rows = [r for r in pick(b_run, other_model, None, "--other-model") if r["dataset"] == ra["dataset"]
            and not (same_run and r["model"] == ra["model"])]
    if not rows:
        raise UserError(f"cannot compare: {b_run['label']} has no views of another model on {ra['dataset']}")
    if len(rows) > 1:
        raise UserError(f"{b_run['label']} has views of several models on {ra['dataset']} "
                        f"({', '.join(sorted(r['model'] for r in rows))}): pick B with --other-model")
    return rows[0]


def difference_views(a, b, doc, show: int, colour: bool, width: int) -> list[str]:
    if doc is not None:
        recorded(a, doc)
        recorded(b, doc)
        picks = [(doc, "named with --doc")]
    else:
        picks = difference_documents(a, b, show)
    pairs = {d: aligned_pair(a, b, d) for d, _ in picks}
    scale = terminal.difference_scale([terminal.difference_values(*pairs[d]) for d, _ in picks])
    lines = [title(f"{b.model} against {a.model} on {a.dataset}: Δ bits = bits({b.model}) − bits({a.model}) "
                   f"on each character", colour),
             terminal.legend(scale, colour, "Δ bits per character", b.model), ""]
    if not picks:
        lines += ["(no document recorded by both differs)", ""]
    for d, why in picks:
        va, vb = pairs[d]
        lines += [difference_header(a, b, va, vb, why, colour),
                  *terminal.difference_lines(va, vb, scale, colour, width), ""]
    for by in ("words", "tokens"):
        lines += [*terminal.top_table(top_lists(a, b, by=by), a.model, b.model), ""]
    return lines


# ---------------------------------------------------------------- headers
def title(text: str, colour: bool) -> str:
    return f"\x1b[1m{text}{terminal.RESET}" if colour else f"== {text}"


def doc_header(v, why: str, colour: bool) -> str:
    drawn = f"cut to its first {len(v.text)} characters" if v.cut else f"whole, {len(v.text)} characters"
    note = "; its tokens do not reproduce the text (lossy tokenizer)" if not v.aligned else ""
    text = (f"document {v.doc} ({why}): {v.bits_per_byte:.4f} bits/byte, {len(v.nll)} tokens drawn, "
            f"{drawn}{note}")
    return f"\x1b[1m{text}{terminal.RESET}" if colour else f"-- {text}"


def difference_header(a, b, va, vb, why: str, colour: bool) -> str:
    """Two lines: the whole documents' Δ bits per byte, then the Δ bits of the characters drawn (their sum)."""
    d = va.doc
    whole = b.docs[d].bits_per_byte - a.docs[d].bits_per_byte
    drawn = "its first" if va.cut else "all"
    first = (f"document {d} ({why}): Δ bits/byte {whole:+.4f} = {b.model} {b.docs[d].bits_per_byte:.4f} − "
             f"{a.model} {a.docs[d].bits_per_byte:.4f} (whole document)")
    second = f"Δ bits {vb.bits - va.bits:+.2f} over {drawn} {len(va.text)} characters, the sum of those below"
    if colour:
        return f"\x1b[1m{first}{terminal.RESET}\n   {second}"
    return f"-- {first}\n   {second}"
