"""Number formatting for report tables: a missing value is a dash, everywhere.

A value is missing when it is ``None`` (JSON ``null``) or not finite (NaN, ±inf: e.g. a ratio over an
empty bin). Every table cell that formats a number goes through :func:`num` (or :func:`interval`),
so no formatter meets ``None`` or prints ``nan``.

Example::

    >>> num(0.123456), num(None), num(float("nan"), "+.4f"), num(3, "d")
    ('0.1235', '–', '–', '3')
    >>> interval([0.1, 0.2], "+.2f"), interval([0.1, None]), interval(None)
    ('[+0.10, +0.20]', '[0.1000, –]', '–')
"""

from __future__ import annotations

import math
from numbers import Real

DASH = "–"


def missing(x) -> bool:
    """``None``, or a number that is not finite."""
    return x is None or (isinstance(x, Real) and not math.isfinite(x))


def num(x, spec: str = ".4f") -> str:
    """``format(x, spec)``, or a dash when ``x`` is missing."""
    return DASH if missing(x) else format(x, spec)


def interval(iv, spec: str = ".4f") -> str:
    """``[lo, hi]`` with each end through :func:`num`; a dash for no interval."""
    return DASH if not iv else f"[{num(iv[0], spec)}, {num(iv[1], spec)}]"
