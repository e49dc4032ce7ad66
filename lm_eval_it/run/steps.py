"""The named pieces of scoring one model × dataset: resume, data parallelism and progress.

- :class:`Resume`: what the checkpoint holds for this model × dataset (finished documents, read by rank 0;
  parts of documents left open) and the record of each document as it finishes.
- :class:`DataParallel`: under torchrun, which batches this rank scores, and rank 0's merge of the others'
  work (their partly scored documents, whole documents, token counts and per-token shards).
- :class:`Progress`: the tqdm bar and the tok/s counters (only what this process scored counts).

Example::

    >>> from lm_eval_it.engine.distributed import Context
    >>> p = Progress(total=10, documents=2, finished=0, desc="m · d", ctx=Context(), show=False)
    >>> p.update(6, 1, True); p.update(4, 1, False); p.close()
    >>> p.scored, p.finished
    (6, 2)
"""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.engine.distributed import Context, assign, broadcast, gather
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.partial import resume_parts
from lm_eval_it.engine.prepare import Prepared
from lm_eval_it.engine.reduce import Reduction


class Resume:
    """The checkpoint's share of one model × dataset (``ck`` is ``None`` for a run without one)."""

    def __init__(self, ck: Checkpoint | None, model: str, dataset: str, ctx: Context):
        self.ck, self.model, self.dataset, self.ctx = ck, model, dataset, ctx

    def start(self, ex: Executor) -> dict:
        """Finished documents by id (rank 0 reads them; other ranks get ``{}``); open parts go into ``ex``."""
        done = self.ck.done(self.model, self.dataset) if self.ck and self.ctx.main else {}
        if self.ck is not None:  # parts of documents: shared by processes, or left open by an interrupt
            resume_parts(ex, self.ck, self.model, self.dataset, self.ctx, done)
        return done

    def record(self, result) -> None:
        if self.ck is not None:
            self.ck.record(self.model, self.dataset, result)


class DataParallel:
    """Torchrun ranks: the shard of batches this rank scores, and rank 0's merge (a no-op for one process)."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def shard(self, ex: Executor, prepared: Prepared, done: dict) -> tuple[list[int] | None, dict]:
        """This rank's batches (``None``: all) and the finished documents every rank skips."""
        ctx = self.ctx
        if not ctx.active:
            return None, done
        # rank 0 alone reads the checkpoints, before any rank writes, so every rank skips the same documents
        ids_done = set(broadcast(ctx, sorted(done)))
        todo = [i for i, b in enumerate(ex.batches) if not all(int(d) in ids_done for d in prepared.plan.doc[b])]
        weights = [int(prepared.plan.length[ex.batches[i]].sum()) for i in todo]
        shard = [todo[j] for j in assign(weights, ctx.world)[ctx.rank]]
        return shard, (done if ctx.main else {d: None for d in ids_done})

    def merge(self, ex: Executor, red: Reduction, scored: int, per_token: dict | None):
        """On rank 0: ``(tokens scored by every rank, per-token output of every rank)``, the others' documents
        merged into ``red``; ``None`` on the other ranks."""
        ctx = self.ctx
        if not ctx.active:
            return scored, per_token
        parts = gather(ctx, ex.partial())
        tokens_all = gather(ctx, scored)
        # documents another rank finished whole: its reduction of them (exact sums, a few numbers per document)
        wholes = gather(ctx, None if ctx.main else red.export())
        written = gather(ctx, per_token)
        if not ctx.main:
            return None
        for other in wholes[1:]:
            red.merge(other)
        for rank_parts in parts[1:]:
            for d, part in rank_parts:
                r = ex.merge_part(d, part)
                if r is not None:
                    red.add(r)
        if per_token is not None:
            per_token = dict(written[0], shards=sum(w["shards"] for w in written), rows=sum(w["rows"] for w in written))
        return sum(tokens_all), per_token


class Progress:
    """The progress bar (rank 0) and the counters behind tok/s; its clock starts when it is made."""

    def __init__(self, total: int, documents: int, finished: int, desc: str, ctx: Context, show: bool):
        self.documents, self.finished, self.scored, self.ctx = documents, finished, 0, ctx
        self.bar = tqdm(total=total, unit="tok", unit_scale=True, disable=not (show and ctx.main), leave=False,
                        desc=desc + (f" · ≈ {ctx.world} ranks" if ctx.active else ""))
        self.seconds = 0.0
        self._t0 = time.perf_counter()

    def update(self, tokens: int, docs_done: int, scored_here: bool) -> None:
        self.finished += docs_done
        self.scored += tokens if scored_here else 0  # tok/s counts only what this process scored
        self.bar.set_postfix_str(f"docs {min(self.finished, self.documents)}/{self.documents}"
                                 if not self.ctx.active else "", refresh=False)
        self.bar.update(tokens * self.ctx.world)

    def close(self) -> None:
        self.bar.close()
        self.seconds = time.perf_counter() - self._t0
