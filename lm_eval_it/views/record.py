"""Record, while scoring, what the token-level views need: bounded in memory and on disk.

A :class:`ViewRecorder` is a token sink of the executor (``token_sink(chunk, nll, rows, keep)``) and is told
when each document completes (:meth:`ViewRecorder.finished`). While the whole dataset fits in the token
budget (``output.views.record_tokens``) every document is kept whole, so lists over the dataset are
exact. Beyond the budget it keeps only the documents a view can show, each cut to its drawn part
(``max_chars``): the ``show`` highest and lowest in bits per byte, the ``show`` lowest in zlib ratio and
highest in Min-K% prob (where the memorisation flags come from) and the ``documents`` named in the config,
for each end a few more (:data:`SPARE`) so that a comparison has documents in common to choose from. Open
documents keep only their drawn part too, so nothing proportional to the corpus stays in memory.

Example::

    rec = ViewRecorder(cfg.output.views, prepared, docs.texts, "m", "d")
    ex = Executor(prepared, scorer, stats, 4, token_sink=rec)
    for result in ex.run():
        rec.finished(result)
    rec.save(folder / "views-m-d.npz")
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lm_eval_it.config.schema import ViewsConfig
from lm_eval_it.stats.insights import FLAGGED_TOP
from lm_eval_it.stats.memorisation.signals import DEFAULT_K, min_k_percent
from lm_eval_it.views.store import DocView, ViewSet, save

log = logging.getLogger(__name__)
LN2 = math.log(2.0)
SPARE = 5  # documents kept at each end beyond those shown
SIGNALS = (("highest", 1.0, "bits_per_byte"), ("lowest", -1.0, "bits_per_byte"),
           ("low zlib ratio", -1.0, "zlib_ratio"), ("high Min-K%", 1.0, "min_k"))


class ViewRecorder:
    def __init__(self, cfg: ViewsConfig, prepared, texts: list[str], model: str, dataset: str,
                 stats: list = (), tokenizer: str = "", dataset_fingerprint: str = "",
                 piece_bytes: Callable[[int], int] | None = None):
        self.cfg, self.p, self.texts = cfg, prepared, texts
        self.piece_bytes = piece_bytes  # UTF-8 bytes of a token's text: for the special tokens a text spells out
        sweep = next((s for s in stats if s.name == "temperature" and 1.0 in list(s.temperatures)), None)
        self.t1 = None if sweep is None else list(sweep.temperatures).index(1.0)  # entropy at T = 1: this column
        self.model, self.dataset, self.tokenizer, self.fingerprint = model, dataset, tokenizer, dataset_fingerprint
        self.named = set(cfg.documents)
        missing = sorted(d for d in self.named if d >= len(texts))
        if missing:
            log.warning(f"output.views.documents: {dataset} has {len(texts)} documents (0 to {len(texts) - 1}); "
                        f"{missing} are not in it")
        self.open: dict[int, list[dict]] = {}
        self.kept: dict[int, DocView] = {}
        self.heaps: dict[str, list] = {name: [] for name, _, _ in SIGNALS}
        self.whole = True  # every finished document so far is kept whole
        self.tokens = 0  # tokens kept
        self.open_tokens = 0  # tokens held for documents still being scored
        self._limits: dict[int, int] = {}  # drawn bytes (+2) of each open document, once the budget is passed
        self.seen = 0  # documents finished here

    # ------------------------------------------------------------------ while scoring
    def limit(self, doc: int) -> int:
        """Positions kept of an open document: all while recording whole, else those that can be drawn."""
        if self.whole:
            return np.iinfo(np.int64).max
        if doc not in self._limits:  # once per document, not once per chunk
            self._limits[doc] = len(self.texts[doc][: self.cfg.max_chars].encode("utf-8")) + 2
        return self._limits[doc]

    def __call__(self, chunk, nll: np.ndarray, rows: dict, keep: np.ndarray) -> None:
        seg = list(chunk.segments) + [len(chunk.doc)]
        entropy = None if self.t1 is None or "temperature" not in rows else \
            np.asarray(rows["temperature"]["entropy"])[:, self.t1]
        for j, k in enumerate(keep):
            if not k:
                continue
            a, b = seg[j], seg[j + 1]
            doc = int(chunk.doc[a])
            pos = chunk.position[a:b]
            m = pos < self.limit(doc)
            if not m.any():
                continue
            ids = chunk.targets[a:b]
            ids = ids.cpu().numpy() if hasattr(ids, "cpu") else np.asarray(ids)
            self.open_tokens += int(m.sum())
            self.open.setdefault(doc, []).append({
                "position": pos[m].astype(np.int64), "length": np.asarray(chunk.target_bytes[a:b])[m].astype(np.int32),
                "token": ids[m].astype(np.int64),
                "nll": np.asarray(nll[a:b], np.float32)[m], "context": np.asarray(chunk.context[a:b])[m].astype(np.int32),
                "entropy": None if entropy is None else entropy[a:b][m].astype(np.float32)})
        if self.whole and self.tokens + self.open_tokens > self.cfg.record_tokens:
            self._stop_whole()

    def _stop_whole(self) -> None:
        """Past the budget: from now on keep only what can be drawn, of the kept and of the open documents."""
        self.whole = False
        for d in list(self.kept):
            self.kept[d] = self._cut(self.kept[d])
        self.tokens = sum(len(v.nll) for v in self.kept.values())
        for d, parts in self.open.items():
            lim = self.limit(d)
            self.open[d] = [{k: (v[x["position"] < lim] if v is not None else None) for k, v in x.items()}
                            for x in parts]
        self.open_tokens = sum(len(x["position"]) for parts in self.open.values() for x in parts)
        self._evict()

    def finished(self, result) -> None:
        """Document ``result.doc`` is complete: keep it (whole, or its drawn part) or drop it."""
        doc = int(result.doc)
        parts = self.open.pop(doc, [])
        self._limits.pop(doc, None)
        self.open_tokens -= sum(len(x["position"]) for x in parts)
        self.seen += 1
        view = self._view(doc, parts)
        if not self.whole:
            view = self._cut(view)
        view.total_bits, view.total_bytes = float(result.nll) / LN2, int(self.p.bytes[doc])
        scores = self._scores(doc, result, view)
        reasons = [name for name, sign, key in SIGNALS if self._push(name, sign * scores[key], doc)]
        if doc in self.named:
            reasons.append("named")
        view.reasons = reasons
        self.kept[doc] = view
        self.tokens += len(view.nll)
        if self.whole and self.tokens + self.open_tokens > self.cfg.record_tokens:
            self._stop_whole()
        elif not self.whole:
            self._evict()

    # ------------------------------------------------------------------ the end
    def viewset(self) -> ViewSet:
        for d, v in self.kept.items():
            v.reasons = [name for name, _, _ in SIGNALS if any(x[1] == d for x in self.heaps[name])] + \
                        (["named"] if d in self.named else [])
        scored = {d for d, v in self.kept.items() if len(v.nll)}  # documents with no scored token count as whole
        complete = self.whole and len(scored) == int((np.asarray(self.p.targets) > 0).sum())
        return ViewSet(self.model, self.dataset, dict(sorted(self.kept.items())), complete,
                       len(self.p.targets), self.tokenizer, self.fingerprint)

    def save(self, path: Path) -> dict:
        """Write the views file; return its results.json block."""
        vs = self.viewset()
        save(path, vs)
        return {"file": Path(path).name, "documents": sorted(vs.docs), "complete": vs.complete,
                "tokens": int(sum(len(v.nll) for v in vs.docs.values())), "max_chars": self.cfg.max_chars}

    # ------------------------------------------------------------------ helpers
    def _view(self, doc: int, parts: list[dict]) -> DocView:
        text = self.texts[doc]
        cat = lambda k: np.concatenate([x[k] for x in parts]) if parts else np.zeros(0)  # noqa: E731
        order = np.argsort(cat("position"), kind="stable")
        pos, length = cat("position")[order].astype(np.int64), cat("length")[order].astype(np.int64)
        if self.piece_bytes is not None and len(length):  # a special token the text spells out ("</s>") has bytes
            ids = cat("token")[order].astype(np.int64)
            for i in np.flatnonzero(length == 0):
                length[i] = self.piece_bytes(int(ids[i]))
        start = np.cumsum(np.r_[0, length])[:-1] + self._lead(doc, pos)
        ent = None if not parts or parts[0]["entropy"] is None else cat("entropy")[order]
        n_text = len(text.encode("utf-8"))
        if self.whole:
            aligned = bool(len(start) == 0 or start[-1] + length[-1] == n_text)
        else:  # only the drawn part's tokens are here: whether the tokenizer reproduces every text
            aligned = not self.p.roundtrip.get("lossy_documents")
        groups = self.p.groups
        return DocView(doc, text, start, length, cat("nll")[order].astype(np.float32), cat("context")[order],
                       ent, groups[doc] if groups else None, aligned)

    def _lead(self, doc: int, pos: np.ndarray) -> int:
        """Bytes before the first scored token: those of the text tokens that are context only.

        Position ``p`` is the target ``S[p + 1]`` of ``S = [prefix] + ids`` (``S = ids`` without a prefix).
        """
        prefixed = self.p.protocol.prefix_id is not None
        if len(pos) == 0 or (prefixed and pos[0] == 0):
            return 0
        head = self.p.sequence(doc, 0, int(pos[0]) + 1)
        ids = head[1:] if prefixed else head
        lead = int(self.p.byte_table[ids].sum())
        excess = self.p.first_excess
        return max(lead - (int(excess[doc]) if excess is not None else 0), 0)

    def _scores(self, doc: int, result, view: DocView) -> dict:
        nbytes = float(self.p.bytes[doc]) or float("nan")
        bits = float(result.nll) / LN2
        zlib = self.p.zlib_bits[doc] if self.p.zlib_bits is not None else float("nan")
        return {"bits_per_byte": bits / nbytes, "zlib_ratio": bits / zlib if zlib else float("nan"),
                "min_k": float(result.extra.get("min_k_logprob", min_k_percent(view.nll, DEFAULT_K)
                                                if len(view.nll) else float("nan")))}

    def _push(self, name: str, score: float, doc: int) -> bool:
        """Keep ``doc`` among the largest scores of one signal (``show + SPARE``; for the memorisation signals at
        least as many as the memorisation block can flag, plus SPARE); True if it is in."""
        if not math.isfinite(score):
            return False
        shown = self.cfg.show if name in ("highest", "lowest") else max(self.cfg.show, FLAGGED_TOP)
        heap, size = self.heaps[name], shown + SPARE
        if len(heap) < size:
            heapq.heappush(heap, (score, doc))
            return True
        if score > heap[0][0]:
            heapq.heapreplace(heap, (score, doc))
            return True
        return False

    def _evict(self) -> None:
        wanted = self.named | {d for heap in self.heaps.values() for _, d in heap}
        for d in [d for d in self.kept if d not in wanted]:
            self.tokens -= len(self.kept.pop(d).nll)

    def _cut(self, view: DocView) -> DocView:
        """The drawn part of a document: its tokens that start within the first ``max_chars`` characters."""
        view.text = view.text[: self.cfg.max_chars]
        limit = len(view.text.encode("utf-8"))
        m = view.start + view.length <= limit  # whole tokens only: a token's bits are never put on part of it
        view.cut = True
        view.start, view.length, view.nll, view.context = view.start[m], view.length[m], view.nll[m], view.context[m]
        if view.entropy is not None:
            view.entropy = view.entropy[m]
        return view

