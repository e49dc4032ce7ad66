"""KL against a reference model: the streaming statistic, its plug-in, and the per-token divergences.
"""
