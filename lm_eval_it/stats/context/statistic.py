"""NLL by context length as a streaming statistic (see :mod:`lm_eval_it.stats.context.bins` for the numerics).

Each scored row falls in a power-of-two bin of its context length (the input
tokens the model saw); per document the statistic sums NLL, tokens and target
bytes per bin, kept per document for the intervals over documents. It also counts,
per bin, the rows scored in their document's first window and after it (an
exact integer histogram), and keeps the fewest and most context tokens of the
rows after a first window, so the coverage labels say what the windows that
ran actually scored.

Example::

    stat = ContextStats(window=1024, stride=1024)
"""

from __future__ import annotations

import numpy as np
import torch

from lm_eval_it.stats.base import Count, Extreme, Statistic, Sum
from lm_eval_it.stats.context.bins import (
    bin_edges,
    bin_index,
    first_window_rows,
    information_gain,
    summarize_context,
)

NONE_AFTER = float(2 ** 40)  # the "after_lo" value of a first-window row: above any context length


class ContextStats(Statistic):
    name = "context"

    def __init__(self, window: int, stride: int):
        self.window, self.stride = window, stride
        self.edges = bin_edges(window)
        self.bins = len(self.edges) - 1

    def fields(self) -> list:
        # windows: bin index, + bins for a row after its document's first window; after_lo / after_hi: the
        # context length of rows after a first window (a first-window row gives NONE_AFTER / 0, never an extreme)
        return [Sum("bins", (self.bins, 3), per_document=True), Count("windows", (), 2 * self.bins),
                Extreme("after_lo"), Extreme("after_hi")]

    def rows(self, chunk) -> dict:
        """One-hot rows (bins × [nll, 1, bytes]), built on the scoring device (no host wait per chunk);
        the first-window split and its extremes from the host's positions and context lengths."""
        nll = chunk.nll.detach()
        dev = nll.device
        idx = bin_index(np.minimum(chunk.context, self.edges[-1] - 1), self.edges)
        b = torch.from_numpy(idx).to(dev)
        out = torch.zeros(len(b), self.bins, 3, dtype=nll.dtype, device=dev)
        vals = torch.stack([nll, torch.ones_like(nll),
                            torch.from_numpy(chunk.target_bytes.astype(np.float32)).to(dev)], dim=1)
        out.scatter_(1, b.view(-1, 1, 1).expand(-1, 1, 3), vals.unsqueeze(1))
        first = first_window_rows(chunk.position, chunk.context)
        ctx = np.asarray(chunk.context, dtype=np.float64)
        return {"bins": out, "windows": idx + self.bins * (~first), "after_lo": np.where(first, NONE_AFTER, ctx),
                "after_hi": np.where(first, 0.0, ctx)}

    def summarize(self, totals: dict, context: dict) -> dict:
        per_doc = context["per_document"]["bins"]
        counts = np.asarray(totals["windows"], dtype=np.int64)
        after = counts[self.bins:]
        if counts.sum() != int(round(float(np.sum(per_doc[..., 1])))):  # e.g. documents from an older checkpoint
            after = None  # the split is unknown for some tokens: no coverage is claimed
        ext = context.get("extremes", {})
        after_range = (ext["after_lo"][0], ext["after_hi"][1]) if after is not None and after.sum() else None
        out = summarize_context(per_doc, self.edges, window=self.window, stride=self.stride, after=after,
                                after_range=after_range)
        if self.window > 128:
            # the bits per token saved by context: from the bin of 64 (64–127 tokens) to the longest full bin
            # below 1024 (512–1023 tokens for a window of 1024 or more)
            hi = min(1023, self.window - 1)
            gain = information_gain(per_doc, self.edges, 64, hi)
            edges = self.edges
            gain["lo_range"] = [int(edges[gain["lo_bin"]]), int(edges[gain["lo_bin"] + 1]) - 1]
            gain["hi_range"] = [int(edges[gain["hi_bin"]]), min(int(edges[gain["hi_bin"] + 1]) - 1, self.window)]
            out["gain_64_1024"] = gain
        return out
