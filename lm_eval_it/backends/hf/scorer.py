"""The Hugging Face backend's scorer: windows through a ``transformers`` model, float32 logits and NLL.

Windows from all documents are sorted by length and batched (right padding,
an attention mask only when lengths differ). The model body runs once per
batch; the LM head runs only on the positions that are scored, in chunks, and
log-softmax is taken in float32 whatever the model dtype, so no
``batch × window × vocab`` float32 tensor ever exists. Padding never enters a
score. Per-token NLLs land in a per-document array at their target's place,
and each document's total is summed from that array in a fixed order, so the
totals do not depend on the batch size.

On load, a short probe checks that ``lm_head(base_model(x))`` reproduces the
model's own logits (a model with extra logit processing fails it); if it
does not, scoring falls back to the model's full forward pass.

Example::

    >>> auto_batch_size("cpu", 1024, model=None)  # CPU: about 4k tokens per forward pass
    4
"""

from __future__ import annotations

import logging
from typing import Iterator

import torch

from lm_eval_it.backends.logits import lockstep, token_nll

log = logging.getLogger(__name__)

LOGIT_BUDGET = 1 << 25  # float32 logits held at once (128 MiB)


def head_width(head) -> int:
    """Entries of one logits row: the LM head's output features."""
    return int(getattr(head, "out_features", 0) or head.weight.shape[0])


class Scorer:
    """Scores planned windows with one causal LM."""

    def __init__(self, model, device: str, logit_budget: int = LOGIT_BUDGET, reference: "Scorer | None" = None,
                 compile: bool = False):
        self.model = model
        self.body = model.base_model
        self.device = device
        self.logit_budget = logit_budget
        self.reference = reference
        self.head = model.get_output_embeddings()
        self.vocab = head_width(self.head)
        text_cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.softcap = getattr(text_cfg, "final_logit_softcapping", None)
        self.split_head = self._probe()
        if compile:  # after the probe, so its odd shape is not compiled; shapes vary, so compile them dynamic
            self.body = torch.compile(model.base_model, dynamic=True)

    # ---------------------------------------------------------------- forward

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.body(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

    def _head_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    @torch.inference_mode()
    def _probe(self) -> bool:
        gen = torch.Generator().manual_seed(0)
        ids = torch.randint(0, min(self.vocab, 1000), (1, 12), generator=gen).to(self.device)
        try:
            full = self.model(input_ids=ids, use_cache=False).logits.float()
            split = self._head_logits(self._hidden(ids, None))
        except Exception as e:  # noqa: BLE001 - any mismatch in structure means: use the full path
            log.warning("split LM head unavailable (%s); using full logits", type(e).__name__)
            return False
        ok = full.shape == split.shape and torch.allclose(full, split, rtol=1e-3, atol=1e-3)
        if not ok:
            log.warning("lm_head(base_model(x)) does not reproduce the model's logits; using full logits")
        return bool(ok)

    def _selected(self, ids, mask, rows, cols):
        """What the head needs at the selected positions, and the function that makes float32 logits of it."""
        if self.split_head:
            return self._hidden(ids, mask)[rows, cols], self._head_logits
        logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits[rows, cols]
        return logits, lambda x: x.float()

    @torch.inference_mode()
    def chunks(self, ids: torch.Tensor, mask: torch.Tensor | None, rows: torch.Tensor, cols: torch.Tensor,
               targets: torch.Tensor) -> Iterator[tuple[int, int, torch.Tensor, torch.Tensor | None, torch.Tensor]]:
        """One forward pass over a batch; then, a slice of scored positions at a time,
        ``(i0, i1, float32 logits, reference logits or None, NLL)``.

        The slices hold at most ``logit_budget`` floats of logits (per model), so no
        ``batch × window × vocab`` float32 tensor ever exists.
        """
        if self.reference is not None and not isinstance(self.reference, Scorer):  # another backend's model
            yield from lockstep(self._slices(ids, mask, rows, cols, targets, None),
                                self.reference.chunks(ids, mask, rows, cols, targets))
            return
        yield from self._slices(ids, mask, rows, cols, targets, self.reference)

    def _slices(self, ids, mask, rows, cols, targets, reference: "Scorer | None") -> Iterator[tuple]:
        selected, pick = self._selected(ids, mask, rows, cols)
        ref = None
        if reference is not None:
            ref = reference._selected(ids, mask, rows, cols)
        models = 2 if ref is not None else 1
        chunk = max(1, self.logit_budget // (models * self.vocab))
        for i in range(0, len(targets), chunk):
            logits = pick(selected[i : i + chunk])
            tgt = targets[i : i + chunk]
            ref_logits = ref[1](ref[0][i : i + chunk]) if ref is not None else None
            yield i, min(i + chunk, len(targets)), logits, ref_logits, token_nll(logits, tgt)


def auto_batch_size(device: str, window: int, model) -> int:
    """A batch size that keeps the work per forward pass near a budget.

    On CPU larger batches gain little once a window fills the matrix units, so
    aim for ~4k tokens per pass. On CUDA estimate from free memory; the scorer
    halves the batch on an out-of-memory error anyway.
    """
    if not device.startswith("cuda"):
        return max(1, 4096 // window)
    free, _ = torch.cuda.mem_get_info()
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    hidden = getattr(cfg, "hidden_size", 1024)
    inter = getattr(cfg, "intermediate_size", 4 * hidden)
    per_token = 2 * (6 * hidden + 3 * inter) * 2  # activations of one layer, bf16, with slack
    return int(max(1, min(256, (free * 0.6) // (per_token * window))))
