"""Reports: results.json, summary.md, report.html (``summary``, ``sections``, ``html``, ``plots``), the
terminal table (``terminal``) and comparisons (``compare/``), all rendered from the results data.
"""
