"""Token-level views: where a model is surprised, and where two models differ (fair across tokenizers).

``record`` keeps, while scoring, the per-token values of a bounded set of documents (``views-*.npz``);
``store`` reads and writes them; ``align`` spreads each token's NLL over its UTF-8 bytes (pure numerics);
``colour`` holds their colour scales. They are drawn in ``lm_eval_it.report``: ``views_html`` and
``views_sections`` (report.html, comparison.html), ``views_terminal`` and ``show`` (``lm-eval-it show``).
"""
