"""Where the token-level views go: report.html's surprisal sections and comparison.html's difference sections.

A results row with a ``views`` block names its views file, which sits in the row's run folder.
:func:`report_sections` draws, for each such row, the documents :func:`~lm_eval_it.views.select.surprisal_documents`
picks (the config's ``output.views.show`` at each end, the memorisation signals' flagged documents, the
config's named ones). :func:`view_sources` maps (model, dataset) to its views file, and :func:`comparison_views`
draws, on one comparison table's dataset, each other model against the baseline: the documents
:func:`~lm_eval_it.views.select.difference_documents` picks and the top lists. Views that do not match
(:func:`~lm_eval_it.views.select.check_same_documents`) leave a one-line note instead, or, with
``strict`` (the user asked for the views), are refused in one line. Rows without views add nothing.

Example::

    sections = report_sections(results, folder)              # [(title, html)] for report.html
    sources = view_sources(rows, folder)                     # {(model, dataset): ViewSource}
    html = comparison_views(table, sources, show=3)          # appended to the dataset's comparison section
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import escape

from lm_eval_it.errors import UserError
from lm_eval_it.report.views_html import difference_html, surprisal_html
from lm_eval_it.views.select import check_same_documents, difference_documents, surprisal_documents
from lm_eval_it.views.store import ViewSet, load

DEFAULT_MAX_CHARS = 2500


@dataclass(frozen=True)
class ViewSource:
    """A row's views file and the characters drawn of each document."""

    path: Path
    max_chars: int = DEFAULT_MAX_CHARS


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def views_config(results: dict) -> dict:
    """The run's ``output.views`` config (``{}`` when the results do not say)."""
    return ((results.get("config") or {}).get("output") or {}).get("views") or {}


def flagged_documents(row: dict) -> list[int]:
    """The documents the memorisation signals flag in a results row."""
    return [f["doc"] for f in ((row.get("memorisation") or {}).get("flagged") or []) if "doc" in f]


def report_sections(results: dict, folder: Path | None) -> list[tuple[str, str]]:
    """``[(title, HTML)]``: "Where the model is surprised" for each row of ``results`` that has views."""
    if folder is None:
        return []
    cfg = views_config(results)
    out = []
    for row in results["results"]:
        block = row.get("views")
        if not block:
            continue
        title = f"Where the model is surprised · {row['model']} · {row['dataset']}"
        path = Path(folder) / block["file"]
        if not path.is_file():
            out.append((title, _note(f"Not drawn: the views file {block['file']} is not in the run folder.")))
            continue
        vs = load(path)
        picks = surprisal_documents(vs, cfg.get("show", 3), flagged_documents(row), cfg.get("documents", []))
        html = surprisal_html(vs, picks, block.get("max_chars", DEFAULT_MAX_CHARS), style=not out)
        out.append((title, html))
    return out


def view_sources(rows: list[dict], folder: Path | None = None) -> dict[tuple[str, str], ViewSource]:
    """``{(model, dataset): ViewSource}`` of the rows with views: their files in ``folder`` (one run), else in
    each row's ``run_folder`` (rows of several runs, :func:`lm_eval_it.report.compare.runs.rows_from_runs`)."""
    out = {}
    for r in rows:
        block, base = r.get("views"), folder if folder is not None else r.get("run_folder")
        if block and base is not None:
            out[(r["model"], r["dataset"])] = ViewSource(Path(base) / block["file"],
                                                         block.get("max_chars", DEFAULT_MAX_CHARS))
    return out


def _load(src: ViewSource, model: str, strict: bool) -> ViewSet | str:
    """The views, or why not (one line; raised when ``strict``)."""
    if src.path.is_file():
        return load(src.path)
    why = f"{model}'s views file {src.path} is missing"
    if strict:
        raise UserError(why)
    return why


def comparison_views(table: dict, sources: dict, show: int = 3, strict: bool = False) -> str:
    """HTML for one comparison table: "Where B differs from A" for each model B with views against the baseline A
    (each with the views' CSS: a page holds few of them).

    ``""`` when no model of the table has views. ``strict``: refuse (``UserError``, one line) views that are
    missing or do not match, instead of a note."""
    a_name, ds = table["baseline"], table["dataset"]
    if len(table["rows"]) < 2:  # one model on this dataset: nothing to compare, nothing to refuse
        return ""
    others = [e["model"] for e in table["rows"] if e["model"] != a_name and (e["model"], ds) in sources]
    missing = [e["model"] for e in table["rows"] if e["model"] != a_name and (e["model"], ds) not in sources]
    if (a_name, ds) not in sources:
        if strict:
            raise UserError(f"no difference views on {ds}: the baseline {a_name} has no views file")
        return _note(f"No difference views: the baseline {a_name} recorded no views on {ds}.") if others else ""
    if strict and missing:
        raise UserError(f"no difference views on {ds}: {', '.join(missing)} recorded none")
    a, parts = _load(sources[(a_name, ds)], a_name, strict), []
    for b_name in others:
        head = f"<h3>Where {escape(b_name)} differs from {escape(a_name)}</h3>\n"
        b = _load(sources[(b_name, ds)], b_name, strict)
        try:
            if isinstance(a, str) or isinstance(b, str):
                raise UserError(a if isinstance(a, str) else b)
            check_same_documents(a, b)
        except UserError as e:
            if strict:
                raise
            parts.append(head + _note(f"Not drawn: {e}."))
            continue
        max_chars = min(sources[(a_name, ds)].max_chars, sources[(b_name, ds)].max_chars)
        parts.append(head + difference_html(a, b, (a_name, b_name), difference_documents(a, b, show), max_chars))
    return "\n".join(parts)
