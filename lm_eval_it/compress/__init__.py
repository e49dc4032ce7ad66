"""Lossless compression with the model: ``lm-eval-it compress`` / ``decompress`` (arithmetic coding).

``container`` is the self-describing file format; ``segments`` cuts any file into text the tokenizer
reproduces and escaped raw bytes; ``coder`` wraps constriction's range coder; ``stepper`` computes the
next-token probabilities by incremental decoding, identically when compressing and decompressing;
``codec`` puts them together.
"""
