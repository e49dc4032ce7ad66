"""What every figure shares: matplotlib on the Agg backend, loaded on first use; PNG bytes; error-bar lengths.

Importing this module (or :mod:`lm_eval_it.report.plots`) loads no matplotlib: :func:`pyplot` imports it
the first time a figure is drawn, so report modules can import the plots at their top.

Example::

    >>> err([1.0, 2.0], [[0.5, 1.25], None])   # below, above; 0 where there is no interval
    [[0.5, 0.0], [0.25, 0.0]]
"""

from __future__ import annotations

import functools
import io


@functools.cache
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display), imported once, when the first figure is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png(fig) -> bytes:
    """The figure as PNG bytes (tight layout, 110 dpi, long labels never clipped); the figure is closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # long labels are never clipped
    pyplot().close(fig)
    return buf.getvalue()


def err(vals, ivs):
    """Error-bar lengths (below, above) from intervals; 0 where an interval is missing."""
    lo = [v - iv[0] if iv else 0.0 for v, iv in zip(vals, ivs)]
    return [lo, [iv[1] - v if iv else 0.0 for v, iv in zip(vals, ivs)]]
