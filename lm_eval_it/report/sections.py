"""Report sections from the plug-ins (:mod:`lm_eval_it.stats.registry`): Markdown and HTML, in each output's order.

Every number is read from result rows (``results.json``'s ``results``); nothing is recomputed.
Each plug-in builds its sections as data (tables ``{"headers", "rows", "left"}``, notes,
named plots; :mod:`lm_eval_it.stats.tables`); here they become Markdown
(:func:`insights_markdown`, for summary.md; ``terminal=True`` gives the short forms of
``--details``) or HTML sections (:func:`insights_sections`, for report.html, which draws the
named plots with :mod:`lm_eval_it.report.plots`). The table builders of the existing
statistics are re-exported here under their old names.

Example::

    >>> row = {"model": "m", "dataset": "d", "metrics": {"bits_per_byte": 1.0}, "compression": {
    ...     "compressors": {"gzip": {"bits_per_byte": 2.5}, "xz": {"bits_per_byte": 2.0}}, "best": "xz",
    ...     "best_bits_per_byte": 2.0, "model_to_best_ratio": 0.5, "definition": "bits out / bytes in"}}
    >>> print(md_table(compression_table([row])).splitlines()[2])
    | m | d | 1.0000 | 2.5000 | 2.0000 | xz | 0.500 |
"""

from __future__ import annotations

from lm_eval_it.report import (
    plots as drawn,  # matplotlib loads only when a plot is drawn
)
from lm_eval_it.report.html import render
from lm_eval_it.stats import registry
from lm_eval_it.stats.analyses import (  # noqa: F401 - the old names, kept for importers
    GROUP_NOTE,
    compression_note,
    compression_table,
    group_table,
)
from lm_eval_it.stats.context.plugin import (  # noqa: F401
    COVERAGE,
    context_note,
    context_table,
    context_terminal_table,
)
from lm_eval_it.stats.memorisation.plugin import (  # noqa: F401
    memorisation_line,
    memorisation_note,
    memorisation_table,
)
from lm_eval_it.stats.tables import by_dataset, md_table  # noqa: F401
from lm_eval_it.stats.tables import cell as _cell  # noqa: F401

PLOTS = {"context_length": "context_length_plot", "groups": "group_plot"}  # plot name -> lm_eval_it.report.plots function


def markdown_sections(rows: list[dict], terminal: bool = False) -> list[tuple[int, str]]:
    """``(order, Markdown)`` of every plug-in with something to show, in its output's order."""
    return registry.sections("terminal" if terminal else "markdown", rows)


INSIGHTS = range(10, 45)  # the dataset analyses' place in every output (context ... groups), before the comparison


def insights_markdown(rows: list[dict], terminal: bool = False) -> str:
    """The dataset analyses' summary.md sections (plug-ins placed in :data:`INSIGHTS`), joined ('' if none);
    ``terminal=True``: their short forms."""
    return "\n".join(s for order, s in markdown_sections(rows, terminal) if order in INSIGHTS)


def html_blocks(blocks: list[dict], plots: bool = True) -> list[dict]:
    """A section's blocks with each named plot drawn (``{"png": bytes | None, "alt"}``; none when ``plots`` is off)."""
    return [{"png": getattr(drawn, PLOTS[b["plot"]])(*b.get("args", ())) if plots else None, "alt": b.get("alt", "")}
            if "plot" in b else b for b in blocks]


def html_sections(results: dict, plots: bool = True) -> list[tuple[int, str, str]]:
    """``(order, title, HTML)`` of every plug-in's report.html sections."""
    return [(order, title, render("insight_section.html.j2", blocks=html_blocks(blocks, plots)))
            for order, got in registry.sections("html", results) for title, blocks in got]


def insights_sections(results: dict, plots: bool = True) -> list[tuple[str, str]]:
    """(title, HTML) sections for report.html, in the plug-ins' HTML order."""
    return [(title, html) for _, title, html in html_sections(results, plots)]
