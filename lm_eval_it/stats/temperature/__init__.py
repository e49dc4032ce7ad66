"""The temperature sweep: the streaming statistic (``sweep``), softmax(z/T) numerics (``softmax``), the best T
(``best``), its certain bounds (``bounds``), calibration, and the plug-in.
"""
