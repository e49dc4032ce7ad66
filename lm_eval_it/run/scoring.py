"""Score one dataset with one model, in named steps: tokenise → batch size → executor → resume → shard →
score → merge → summarise → the results row.

Example (see :func:`lm_eval_it.run.runner.run` for a whole run)::

    row = score_dataset(lm, lm.scorer(), docs, cfg, show_progress=False)
    row.metrics["bits_per_byte"], row.per_document[0]["nll"]
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

from lm_eval_it.backends.base import Backend, WindowScorer
from lm_eval_it.backends.fingerprints import cache_root
from lm_eval_it.config.schema import RunConfig
from lm_eval_it.data.documents import Documents
from lm_eval_it.engine.checkpoint import Checkpoint
from lm_eval_it.engine.distributed import Context, broadcast
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.partial import part_hooks
from lm_eval_it.engine.pertoken import PerTokenWriter
from lm_eval_it.engine.prepare import Prepared, min_context, prepare
from lm_eval_it.engine.reduce import Reduction, dataset_metrics
from lm_eval_it.run.document import dataset_result
from lm_eval_it.run.results import DatasetResult
from lm_eval_it.run.statistics import (
    available_compressors,
    plugins_for,
    stat_blocks,
    warn_once,
)
from lm_eval_it.run.steps import DataParallel, Progress, Resume
from lm_eval_it.stats import registry
from lm_eval_it.views.record import ViewRecorder


def score_dataset(lm: Backend, scorer: WindowScorer, docs: Documents, cfg: RunConfig, show_progress: bool,
                  tok_info: dict | None = None, folder: Path | None = None, ck: Checkpoint | None = None,
                  ctx: Context = Context(), reference_name: str | None = None) -> DatasetResult | None:
    """Score one dataset with one model; ``None`` on ranks other than 0 (they only score their shard)."""
    t0 = time.perf_counter()
    info = tok_info or lm.tokenizer.info()
    prepared = tokenise(lm, docs, cfg, info)
    batch_size = choose_batch_size(lm, docs, cfg, prepared, ck, ctx)
    plugins = plugins_for(cfg, lm, scorer, prepared, reference_name)
    stats = registry.per_token(plugins)
    writer = per_token_writer(cfg, stats, folder, lm.name, docs.name, ctx)
    views = view_recorder(cfg, prepared, docs, stats, lm.name, info, folder, lm.tokenizer)
    # eval.threads sets the forward's threads; the statistics' short kernels stay on one
    ex = Executor(prepared, scorer, stats, batch_size, stat_threads=1, token_sink=tee(writer, views),
                  **part_hooks(ck, lm.name, docs.name, ctx))
    red = Reduction(ex.layout, prepared)
    resume, parallel = Resume(ck, lm.name, docs.name, ctx), DataParallel(ctx)
    shard, done = parallel.shard(ex, prepared, resume.start(ex))
    n_resumed = fold_in(red, done)
    progress = score(ex, red, resume, set(done), shard, prepared, show_progress, f"{lm.name} · {docs.name}", ctx,
                     views)
    merged = parallel.merge(ex, red, progress.scored, writer.close() if writer else None)
    if merged is None:
        return None
    scored, per_token = merged
    metrics, intervals, per_doc = dataset_metrics(red)
    blocks = stat_blocks(plugins, red, metrics, per_doc, prepared, ex, ctx)
    timing = {"seconds": time.perf_counter() - t0, "scoring_seconds": progress.seconds, "tokens_scored_here": scored,
              "tokens_per_second": scored / progress.seconds if progress.seconds and scored else None}
    view_block = views.save(folder / views_file(lm.name, docs.name)) if views is not None else None
    return dataset_result(lm, docs, info, protocol(prepared, cfg, batch_size), metrics, intervals, prepared.roundtrip,
                          blocks, len(prepared.targets), timing, per_token, n_resumed, per_doc, view_block)


def tokenise(lm: Backend, docs: Documents, cfg: RunConfig, info: dict) -> Prepared:
    """Tokenise and plan the windows (cached), warning once about what the plan changed or lost."""
    prepared = prepare(lm.tokenizer, docs.texts, docs.name, f"{info['fingerprint']}:{docs.fingerprint}",
                       cache_root() / "tokens", cfg.eval, lm.max_positions, lm.name,
                       groups=getattr(docs, "groups", None), compressors=available_compressors(cfg.eval.compressors))
    for note in prepared.notes:
        warn_once(note)
    if prepared.roundtrip["lossy_documents"]:
        rt = prepared.roundtrip
        sample = rt["sample"] or {}
        warn_once(f"LOSSY TOKENIZER: {lm.name} does not reproduce {rt['lossy_documents']} of {len(prepared.targets)} "
                  f"documents of {docs.name} ({rt['lossy_bytes']} bytes differ; e.g. {sample.get('text')!r} became "
                  f"{sample.get('decoded')!r}). It scores its normalised text, so bits per byte is not exactly comparable.")
    return prepared


def choose_batch_size(lm: Backend, docs: Documents, cfg: RunConfig, prepared: Prepared, ck: Checkpoint | None,
                      ctx: Context) -> int:
    """The configured batch size, or the measured one; a resumed run keeps the one it started with."""
    bs = cfg.eval.batch_size
    batch_size = bs if isinstance(bs, int) else broadcast(ctx, lm.auto_batch_size(prepared.protocol.window))
    if ck is not None and ctx.main:
        batch_size = ck.batch_size(lm.name, docs.name, batch_size)
    return broadcast(ctx, batch_size)


def fold_in(red: Reduction, done: dict) -> int:
    """Fold the documents finished before (decoded from the checkpoint) into the reduction; count them."""
    for r in done.values():
        if r is not None:
            red.add(r)
    return len(done)


def per_token_writer(cfg: RunConfig, stats: list, folder: Path | None, model: str, dataset: str,
                     ctx: Context) -> PerTokenWriter | None:
    """With ``output.per_token``: every rank writes the rows it scores (rank 0: part-*)."""
    if not (cfg.output.per_token and folder is not None):
        return None
    return PerTokenWriter(folder / f"per_token-{model}-{dataset}".replace("/", "_"), stats, ctx.rank)


def views_file(model: str, dataset: str) -> str:
    """The views file's name in the run folder."""
    return f"views-{model}-{dataset}.npz".replace("/", "_")


def view_recorder(cfg: RunConfig, prepared: Prepared, docs: Documents, stats: list, model: str, info: dict,
                  folder: Path | None, tokenizer) -> ViewRecorder | None:
    """With ``output.views.enabled`` and a run folder: the recorder of the documents the views can show
    (not for streamed datasets, whose texts are gone, nor for llama-perplexity's chunks, which are not documents)."""
    if not cfg.output.views.enabled or folder is None or docs.streaming or prepared.protocol.name == "llama-perplexity":
        return None
    return ViewRecorder(cfg.output.views, prepared, docs.texts, model, docs.name, stats, info.get("fingerprint", ""),
                        docs.fingerprint, piece_bytes=functools.cache(lambda i: len(tokenizer.decode([i]).encode())))


def tee(*sinks):
    """One token sink that calls every sink given (``None``s left out); ``None`` if there is none."""
    live = [s for s in sinks if s is not None]
    if len(live) <= 1:
        return live[0] if live else None

    def both(*args):
        for s in live:
            s(*args)
    return both


def score(ex: Executor, red: Reduction, resume: Resume, done: set, shard: list[int] | None, prepared: Prepared,
          show: bool, desc: str, ctx: Context, views: ViewRecorder | None = None) -> Progress:
    """Score this process's batches, recording and reducing each document as it completes."""
    total = int(prepared.plan.scored.sum())
    progress = Progress(total, int((prepared.targets > 0).sum()), len(done), desc, ctx, show)
    for result in ex.run(done, shard, progress=progress.update, empty=ctx.main):
        resume.record(result)
        red.add(result)
        if views is not None:
            views.finished(result)
    progress.close()
    return progress


def protocol(prepared: Prepared, cfg: RunConfig, batch_size: int) -> dict:
    """The window protocol that ran (results.json ``eval``)."""
    proto = prepared.protocol
    return {"window": proto.window, "stride": proto.stride, "window_unit": cfg.eval.window_unit,
            "batch_size": batch_size, "prefix": proto.prefix, "prefix_token_id": proto.prefix_id,
            "windows": int(len(prepared.plan)), "min_context": min_context(prepared.plan, proto.every_window),
            "configured_window": proto.configured_window, "configured_stride": proto.configured_stride,
            "text_tokens_per_window": proto.plan_window, "protocol": proto.name, "n_ctx": proto.window
            if proto.name == "llama-perplexity" else None, "chunks": proto.chunks}
