"""Data parallelism under ``torchrun`` / ``accelerate launch`` (gloo on CPU, NCCL on GPU).

Every rank plans the same global batches; :func:`assign` deals them out so that
each rank gets about the same number of tokens (not documents); each rank scores
its batches; rank 0 gathers the per-token results and writes the report. Since
every batch is computed exactly as in a single process, the numbers are
identical to a single-process run with the same batch size.

Example::

    >>> assign([5, 3, 3, 2, 1], world=2)      # token counts of five batches
    [[0, 3], [1, 2, 4]]
"""

from __future__ import annotations

import heapq
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def assign(weights: list[int], world: int) -> list[list[int]]:
    """Longest-processing-time-first: each item (heaviest first) to the least-loaded rank."""
    heap = [(0, r) for r in range(world)]
    shards: list[list[int]] = [[] for _ in range(world)]
    for i in sorted(range(len(weights)), key=lambda i: (-weights[i], i)):
        load, r = heapq.heappop(heap)
        shards[r].append(i)
        heapq.heappush(heap, (load + weights[i], r))
    return [sorted(s) for s in shards]


def init(device: str) -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def broadcast(ctx: Context, obj):
    """Rank 0's ``obj`` on every rank."""
    if not ctx.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(ctx: Context, obj) -> list | None:
    """Every rank's ``obj`` as a list on rank 0 (``None`` elsewhere)."""
    if not ctx.active:
        return [obj]
    import torch.distributed as dist

    out = [None] * ctx.world if ctx.main else None
    dist.gather_object(obj, out, dst=0)
    return out
