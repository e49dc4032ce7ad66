"""Token-level views: where a model is surprised, and where two models differ (fair across tokenizers).

``record`` keeps, while scoring, the per-token values of a bounded set of documents (``views-*.npz``);
``store`` reads and writes them; ``align`` spreads each token's NLL over its UTF-8 bytes (pure numerics);
``colour``, ``html`` and ``terminal`` draw the views.
"""
