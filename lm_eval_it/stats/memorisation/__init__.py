"""Memorisation signals: Min-K% prob (the statistic), zlib ratio and robust flags (``signals``), the plug-in.
"""
