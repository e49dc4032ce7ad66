"""A run end to end: the runner's named steps (``runner``, ``scoring``, ``steps``), the statistics wired to
the registry (``statistics``), the typed results schema and its one builder (``results``, ``document``).
"""
