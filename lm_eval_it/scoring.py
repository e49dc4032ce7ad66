"""Scoring: run windows through the model and collect per-token NLL.

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

    >>> import torch
    >>> logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    >>> token_nll(logits, torch.tensor([0, 1])).tolist()  # ln 2, ln(1+e^2)
    [0.6931471824645996, 2.1269280910491943]
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .errors import UserError
from .temperature import softmax_stats
from .windows import Window

log = logging.getLogger(__name__)

LOGIT_BUDGET = 1 << 25  # float32 logits held at once (128 MiB)


def token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (nats) of ``targets`` under ``logits`` rows, in float32."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


@dataclass
class DocScore:
    token_nll: np.ndarray  # float32, one per target, in text order
    extra: dict = field(default_factory=dict)  # per-target arrays: temperature stats, targets, hidden states
    covered: np.ndarray | None = None  # which targets this part holds (None: all of them)

    def merge(self, other: "DocScore") -> "DocScore":
        """Combine two parts of one document scored by different processes."""
        if self.covered is None:
            return self
        if other.covered is None:
            return other
        take = other.covered & ~self.covered
        nll = np.where(take, other.token_nll, self.token_nll)
        extra = dict(self.extra)
        for k, v in other.extra.items():
            mine = extra.get(k)
            if mine is None:
                mine = np.zeros_like(v)
            shape = (-1,) + (1,) * (v.ndim - 1)
            extra[k] = np.where(take.reshape(shape), v, mine)
        cov = self.covered | other.covered
        return DocScore(nll, extra, None if cov.all() else cov)

    @property
    def nll(self) -> float:
        return float(np.sum(self.token_nll, dtype=np.float64))

    @property
    def tokens(self) -> int:
        return int(self.token_nll.size)


def concat_extra(scores: list[DocScore], key: str) -> np.ndarray:
    """One per-token array of ``key`` across documents, in document order (empty if absent)."""
    parts = [s.extra[key] for s in scores if key in s.extra]
    return np.concatenate(parts) if parts else np.zeros(0)


@dataclass(frozen=True)
class _Item:
    doc: int
    index: int  # window number within the document
    window: Window


class Scorer:
    """Scores planned windows with one causal LM."""

    def __init__(self, model, device: str, logit_budget: int = LOGIT_BUDGET,
                 temperatures: list[float] | None = None, keep_hidden: bool = False):
        self.model = model
        self.device = device
        self.logit_budget = logit_budget
        self.temperatures = list(temperatures or [])
        self.keep_hidden = keep_hidden
        self.head = model.get_output_embeddings()
        self.vocab = int(getattr(self.head, "out_features", 0) or self.head.weight.shape[0])
        text_cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.softcap = getattr(text_cfg, "final_logit_softcapping", None)
        self.split_head = self._probe()

    # ---------------------------------------------------------------- forward

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.model.base_model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state

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

    def _batch_nll(self, ids, mask, rows, cols, targets) -> dict[str, torch.Tensor]:
        """NLL (and the temperature statistics, if asked) at the selected positions of one batch."""
        selected, pick = self._selected(ids, mask, rows, cols)
        chunk = max(1, self.logit_budget // self.vocab)
        parts: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(targets), chunk):
            logits, tgt = pick(selected[i : i + chunk]), targets[i : i + chunk]
            parts.setdefault("nll", []).append(token_nll(logits, tgt))
            if self.temperatures:
                stats = softmax_stats(logits, tgt, self.temperatures, derivatives=self.keep_hidden)
                for key, value in stats.items():
                    parts.setdefault("T_" + key, []).append(value)
        out = {k: torch.cat(v) for k, v in parts.items()}
        if self.keep_hidden and self.split_head:
            out["hidden"] = selected.float()
            out["target"] = targets
        return out

    def _hidden_dtype(self) -> torch.dtype:
        w = getattr(self.head, "weight", None)
        return w.dtype if isinstance(w, torch.Tensor) else torch.float32

    @torch.inference_mode()
    def head_stats(self, hidden: np.ndarray, targets: np.ndarray, temperatures, derivatives=False) -> dict:
        """:func:`softmax_stats` over stored hidden states (for the best-temperature search)."""
        chunk = max(1, self.logit_budget // self.vocab)
        parts: dict[str, list[torch.Tensor]] = {}
        for i in range(0, len(targets), chunk):
            h = torch.from_numpy(hidden[i : i + chunk]).to(self.device, dtype=self._hidden_dtype())
            t = torch.from_numpy(targets[i : i + chunk]).to(self.device, dtype=torch.long)
            for k, v in softmax_stats(self._head_logits(h), t, temperatures, derivatives).items():
                parts.setdefault(k, []).append(v)
        return {k: torch.cat(v).numpy() for k, v in parts.items()}

    # ---------------------------------------------------------------- driver

    def plan_batches(self, plans: list[list[Window]], batch_size: int) -> list[list[_Item]]:
        """The global batch plan: windows sorted by length (stable), cut into batches."""
        items = [_Item(d, k, w) for d, plan in enumerate(plans) for k, w in enumerate(plan)]
        items.sort(key=lambda it: -it.window.length)
        bs = max(1, batch_size)
        return [items[i : i + bs] for i in range(0, len(items), bs)]

    def score(
        self,
        seqs: list[list[int]],
        plans: list[list[Window]],
        batch_size: int,
        progress: Callable[[int, int], None] | None = None,
        doc_names: list[str] | None = None,
        window_prefix: int | None = None,
        done: dict[int, DocScore] | None = None,
        on_doc: Callable[[int, DocScore], None] | None = None,
        shard: list[int] | None = None,
    ) -> list[DocScore]:
        """Score the planned windows; return one :class:`DocScore` per sequence.

        ``progress(tokens, documents)`` is called after each batch with the tokens
        scored and the documents completed by it. ``window_prefix``, when given, is
        put in front of every window that does not start the sequence (plan those
        windows one token shorter). ``done`` holds documents already scored (a
        resume): batches made only of their windows are skipped and the batch plan
        is otherwise unchanged, so the numbers are identical to an uninterrupted
        run. ``on_doc(doc, score)`` is called as this process finishes its part of a
        document. ``shard`` lists the batches of the global plan this process
        scores (data parallelism); the scores then cover only those windows.
        """
        done = done or {}
        batches = self.plan_batches(plans, batch_size)
        mine = range(len(batches)) if shard is None else shard
        left = [0] * len(seqs)
        for i in mine:
            for it in batches[i]:
                left[it.doc] += 1
        results: list[dict[str, np.ndarray]] = [{} for _ in seqs]
        covered = [np.zeros(max(len(s) - 1, 0), dtype=bool) for s in seqs]
        queue = deque(batches[i] for i in mine)
        limit = None  # the largest batch that fitted, after an out-of-memory error
        with torch.inference_mode():
            while queue:
                batch = queue.popleft()
                if limit and len(batch) > limit:
                    queue.extendleft(reversed([batch[j : j + limit] for j in range(0, len(batch), limit)]))
                    continue
                finished = 0
                if all(it.doc in done for it in batch):
                    for it in batch:
                        left[it.doc] -= 1
                        finished += left[it.doc] == 0
                    if progress:
                        progress(sum(it.window.n_scored for it in batch), finished)
                    continue
                try:
                    out = self._run(seqs, batch, window_prefix)
                except torch.OutOfMemoryError:
                    if len(batch) == 1:
                        raise UserError("out of memory with batch_size 1; use a smaller eval.window or dtype") from None
                    limit = max(1, len(batch) // 2)
                    log.warning("out of memory; retrying with batch_size %d", limit)
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    queue.appendleft(batch)
                    continue
                self._check_finite(out["nll"], batch, doc_names)
                offset = 0
                for it in batch:
                    n, t0 = it.window.n_scored, it.window.start + it.window.score_from
                    for key, arr in out.items():
                        dest = results[it.doc].get(key)
                        if dest is None:
                            dest = results[it.doc][key] = np.zeros((len(seqs[it.doc]) - 1, *arr.shape[1:]), arr.dtype)
                        dest[t0 : t0 + n] = arr[offset : offset + n]
                    covered[it.doc][t0 : t0 + n] = True
                    offset += n
                    left[it.doc] -= 1
                    if left[it.doc] == 0:
                        finished += 1
                        if on_doc and it.doc not in done:
                            on_doc(it.doc, self._doc_score(results[it.doc], seqs[it.doc], covered[it.doc]))
                if progress:
                    progress(offset, finished)
        return [done[d] if d in done else self._doc_score(r, s, c)
                for d, (r, s, c) in enumerate(zip(results, seqs, covered))]

    @staticmethod
    def _doc_score(arrays: dict, seq, covered: np.ndarray | None = None) -> DocScore:
        extra = {k: v for k, v in arrays.items() if k != "nll"}
        nll = arrays.get("nll", np.zeros(max(len(seq) - 1, 0), np.float32))
        return DocScore(nll, extra, None if covered is None or covered.all() else covered.copy())

    def _run(self, seqs, batch: list[_Item], window_prefix: int | None) -> dict[str, np.ndarray]:
        inputs, targets, rows, cols = [], [], [], []
        for r, it in enumerate(batch):
            w, seq = it.window, seqs[it.doc]
            inp = seq[w.start : w.start + w.length]
            shift = 0
            if window_prefix is not None and w.start > 0:
                inp, shift = [window_prefix] + inp, 1
            inputs.append(inp)
            targets.extend(seq[w.start + w.score_from + 1 : w.start + w.length + 1])
            rows.extend([r] * w.n_scored)
            cols.extend(range(w.score_from + shift, w.length + shift))
        width = max(len(x) for x in inputs)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        ragged = any(len(x) != width for x in inputs)
        mask = torch.zeros((len(batch), width), dtype=torch.long) if ragged else None
        for r, inp in enumerate(inputs):
            ids[r, : len(inp)] = torch.tensor(inp)
            if mask is not None:
                mask[r, : len(inp)] = 1
        dev = self.device
        pin = dev.startswith("cuda")
        to = lambda t: (t.pin_memory() if pin else t).to(dev, non_blocking=pin)  # noqa: E731
        out = self._batch_nll(
            to(ids), None if mask is None else to(mask),
            to(torch.tensor(rows)), to(torch.tensor(cols)), to(torch.tensor(targets)),
        )
        return {k: v.cpu().numpy() for k, v in out.items()}

    @staticmethod
    def _check_finite(nll: np.ndarray, batch: list[_Item], doc_names) -> None:
        if np.isfinite(nll).all():
            return
        offset = 0
        for it in batch:
            part = nll[offset : offset + it.window.n_scored]
            offset += it.window.n_scored
            if not np.isfinite(part).all():
                doc = doc_names[it.doc] if doc_names else it.doc
                raise UserError(
                    f"non-finite logits in document {doc}, window {it.index}; "
                    "the model overflowed in this dtype: try dtype: float32"
                )


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
