"""The engine: documents → token ids and a window plan (``prepare``, ``protocol``, ``windows``, ``tokens``) →
batches through a backend's scorer (``execute``) → exact per-document reductions (``accumulate``, ``reduce``),
with checkpoints, resume, data parallelism and per-token output beside them.
"""
