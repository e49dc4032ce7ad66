"""Lossless compression with the model: ``lm-eval-it compress`` / ``decompress`` (arithmetic coding).

``segments`` cuts any file into text the tokenizer reproduces and escaped raw bytes; ``schedule`` deals the
windows to lanes; ``kvcache`` is the in-place KV cache; ``codec`` runs the model step by step and feeds its
probabilities to constriction's range coder, identically when compressing and decompressing; ``container``
is the self-describing file format; ``api`` and ``command`` are the Python and command-line entry points.
"""
