"""NLL by context length as a streaming statistic (see :mod:`lm_eval_it.context` for the numerics).

Each scored row falls in a power-of-two bin of its context length (the input
tokens the model saw); per document the statistic sums NLL, tokens and target
bytes per bin, kept per document for the document bootstrap.

Example::

    stat = ContextStats(window=1024, stride=1024)
"""

from __future__ import annotations

import numpy as np
import torch

from ..context import bin_edges, bin_index, information_gain, summarize_context
from .base import Statistic, Sum


class ContextStats(Statistic):
    name = "context"

    def __init__(self, window: int, stride: int):
        self.window, self.stride = window, stride
        self.edges = bin_edges(window)
        self.bins = len(self.edges) - 1

    def fields(self) -> list:
        return [Sum("bins", (self.bins, 3), per_document=True)]

    def rows(self, chunk) -> dict:
        """One-hot rows (bins × [nll, 1, bytes]), built on the scoring device (no host wait per chunk)."""
        nll = chunk.nll.detach()
        dev = nll.device
        b = torch.from_numpy(bin_index(np.minimum(chunk.context, self.edges[-1] - 1), self.edges)).to(dev)
        out = torch.zeros(len(b), self.bins, 3, dtype=nll.dtype, device=dev)
        vals = torch.stack([nll, torch.ones_like(nll),
                            torch.from_numpy(chunk.target_bytes.astype(np.float32)).to(dev)], dim=1)
        out.scatter_(1, b.view(-1, 1, 1).expand(-1, 1, 3), vals.unsqueeze(1))
        return {"bins": out}

    def summarize(self, totals: dict, context: dict) -> dict:
        per_doc = context["per_document"]["bins"]
        out = summarize_context(per_doc, self.edges, window=self.window, stride=self.stride)
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
