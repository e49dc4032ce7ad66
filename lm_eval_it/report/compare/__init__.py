"""Comparisons: models or runs side by side on the same documents (``build``), as tables (``tables``),
with the plug-ins' extras (``extras``), across run folders (``runs``).
"""
