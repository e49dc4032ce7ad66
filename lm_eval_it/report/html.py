"""HTML pages from the jinja2 templates in ``lm_eval_it/report/templates``: one self-contained page each.

Pages are built from (title, trusted HTML) sections; numbers go through :func:`lm_eval_it.numfmt.num`
(the ``num`` filter), PNG plots through the ``b64`` filter as data URIs.

Example::

    >>> "<h2>Notes</h2>" in render("base.html.j2", title="t", sections=[("Notes", "<p>x</p>")])
    True
"""

from __future__ import annotations

import base64
import functools

import jinja2
from markupsafe import Markup

from lm_eval_it.numfmt import num


@functools.lru_cache(maxsize=1)
def _env():
    env = jinja2.Environment(loader=jinja2.PackageLoader("lm_eval_it.report", "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["b64"] = lambda png: base64.b64encode(png).decode("ascii")
    env.filters["num"] = num
    return env


def render(template: str, **context) -> str:
    """Render one of ``lm_eval_it/report/templates``; ``sections`` are (title, trusted HTML) pairs."""
    sections = [(t, Markup(h)) for t, h in context.pop("sections", ())]
    return _env().get_template(template).render(sections=sections, **context)
