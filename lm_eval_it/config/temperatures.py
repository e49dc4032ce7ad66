"""``--temperatures``: the text of a temperature sweep, read into a list of floats.

``start:stop:step`` is inclusive of ``stop`` (within 1e-9 steps of it, so ``0.2:2.0:0.1`` ends at 2.0
despite float steps); each value is rounded to 10 decimals, so ``0.30000000000000004`` reads ``0.3``.
A comma list is taken as written. The config then adds T = 1 and sorts (:class:`~lm_eval_it.config.eval.EvalConfig`).

Example::

    >>> parse_temperatures("0.2:2.0:0.1")[:3], len(parse_temperatures("0.2:2.0:0.1"))
    ([0.2, 0.3, 0.4], 19)
"""

from __future__ import annotations

import math


def parse_temperatures(spec: str) -> list[float]:
    """``"0.2:2.0:0.1"`` (start:stop:step, inclusive) or ``"0.5,1,2"``.

    >>> parse_temperatures("0.5:1.0:0.25"), parse_temperatures("1,2")
    ([0.5, 0.75, 1.0], [1.0, 2.0])
    """
    if ":" in spec:
        start, stop, step = (float(x) for x in spec.split(":"))
        if step <= 0 or start <= 0 or stop < start:
            raise ValueError("expected start:stop:step with 0 < start <= stop and step > 0")
        n = int(math.floor((stop - start) / step + 1e-9)) + 1
        return [round(start + i * step, 10) for i in range(n)]
    return [float(x) for x in spec.split(",") if x.strip()]
