"""Data: a dataset entry of the config becomes documents, byte for byte (``documents``), from local files
(``readers``), named benchmarks or the Hugging Face hub (``hub``).
"""
