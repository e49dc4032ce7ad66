"""Exact best temperature on request: extra scoring passes that narrow the bracket (``best_temperature: exact``).

The streamed sweep gives an interpolated minimiser (:mod:`lm_eval_it.stats.temperature.best`).
Each refinement pass scores every window again, summing only NLL and its two
β-derivatives at three temperatures around the current estimate; the new exact
points shrink the bracket, and the quintic Hermite step inside a bracket a few
1e-6 wide is exact to float32 precision. It stops when the bracket is narrower
than :data:`lm_eval_it.stats.temperature.best.EXACT_RTOL` (labelled ``exact``) or after eight
passes. A minimum beyond the points is first searched for outward
(:func:`lm_eval_it.stats.temperature.best.outward_points`: three temperatures a pass, each step up
to a factor 4 in β further), up to T = 1e-3 or 1e3.

Example::

    points = refine_best_temperature(temperature_stat, totals, executor, ctx)
"""

from __future__ import annotations

import torch

from lm_eval_it.engine.distributed import Context, assign, broadcast, gather
from lm_eval_it.engine.execute import Executor
from lm_eval_it.stats.base import ExactSum, Statistic, Sum
from lm_eval_it.stats.temperature.best import best_from_points, outward_points, refinement_points
from lm_eval_it.stats.temperature.softmax import softmax_stats


class SearchStats(Statistic):
    """NLL, dNLL/dβ and d²NLL/dβ² summed at a few temperatures."""

    name = "search"

    def __init__(self, temperatures: list[float]):
        self.temperatures = list(temperatures)

    def fields(self) -> list:
        return [Sum(k, (len(self.temperatures),)) for k in ("nll", "d1", "d2")]

    def rows(self, chunk) -> dict:
        # float64: near the minimum the summed slope cancels, and float32 rows leave noise of ~1e-5 in T there
        s = softmax_stats(chunk.logits, chunk.targets, self.temperatures, derivatives=True, dtype=torch.float64)
        return {"nll": s["nll"], "d1": s["d1"], "d2": s["d2"]}


def search_pass(ex: Executor, temperatures: list[float], ctx: Context) -> list[tuple[float, float, float, float]]:
    """Score every window once more at ``temperatures``; ``(T, NLL, slope, curvature)`` summed over the dataset."""
    stat = SearchStats(temperatures)
    sub = Executor(ex.p, ex.scorer, [stat], ex.batch_size, stat_threads=ex.stat_threads)
    total = ExactSum(sub.layout.size)
    shard = None
    if ctx.active:
        weights = [int(ex.p.plan.length[b].sum()) for b in sub.batches]
        shard = assign(weights, ctx.world)[ctx.rank]
    for r in sub.run(shard=shard, empty=False):
        total.add(r.sums)
    for _, part in sub.partial():
        total.merge(ExactSum.from_json(part["sums"]))
    if ctx.active:
        parts = gather(ctx, total.to_json())
        if ctx.main:
            for p in parts[1:]:
                total.merge(ExactSum.from_json(p))
        values = broadcast(ctx, total.value().tolist() if ctx.main else None)
    else:
        values = total.value().tolist()
    k = len(temperatures)
    return [(t, values[i], values[k + i], values[2 * k + i]) for i, t in enumerate(temperatures)]


def refine_best_temperature(stat, totals: dict, ex: Executor, ctx: Context, max_passes: int = 8) -> list:
    """Extra points ``(T, NLL, slope, curvature)`` from refinement passes, until the bracket is exact."""
    refined: list = []
    for passes in range(max_passes):
        best = best_from_points(*stat.points(totals, refined))
        if best["method"] in ("exact", "at_point", "flat"):
            break
        temps = broadcast(ctx, outward_points(best) if best["method"] == "beyond" else refinement_points(best, passes))
        if not temps:
            break
        refined += search_pass(ex, temps, ctx)
    return refined
