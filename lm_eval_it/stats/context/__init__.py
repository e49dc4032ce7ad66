"""NLL by context length: the streaming statistic, its plug-in, and the binned numerics (``bins``).
"""
