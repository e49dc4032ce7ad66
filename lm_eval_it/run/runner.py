"""The run: config → models → documents → prepare → execute → summarize → report.

Example (a tiny random model; see tests/conftest.py for ``tiny_model_dir``)::

    cfg, raw = load_config("configs/quickstart.yaml")
    folder = run(cfg, raw)          # results/<run>/<timestamp>/results.json
"""

from __future__ import annotations

import gc
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
from tqdm.auto import tqdm

from lm_eval_it.backends.hf_loader import (
    LoadedModel,
    cache_root,
    load_model,
    resolve_device,
)
from lm_eval_it.backends.hf_scorer import Scorer, auto_batch_size
from lm_eval_it.backends.tokenizer import tokenizer_info
from lm_eval_it.config.schema import RunConfig
from lm_eval_it.data.documents import Documents, load_documents
from lm_eval_it.engine.checkpoint import Checkpoint, run_header
from lm_eval_it.engine.distributed import Context, assign, broadcast, gather
from lm_eval_it.engine.distributed import init as init_distributed
from lm_eval_it.engine.execute import Executor
from lm_eval_it.engine.partial import part_hooks, resume_parts
from lm_eval_it.engine.pertoken import PerTokenWriter
from lm_eval_it.engine.prepare import Prepared, min_context, prepare
from lm_eval_it.engine.reduce import Reduction, dataset_metrics
from lm_eval_it.engine.refine import refine_best_temperature
from lm_eval_it.errors import UserError
from lm_eval_it.report.compare.build import (
    build_comparison,
    comparison_markdown,
    write_comparison,
)
from lm_eval_it.report.summary import write_run
from lm_eval_it.report.terminal import terminal_report
from lm_eval_it.run.provenance import collect
from lm_eval_it.run.rundir import discard, interrupted, open_checkpoint
from lm_eval_it.stats.compression import available as compressors_here
from lm_eval_it.stats.context.statistic import ContextStats
from lm_eval_it.stats.insights import (
    compression_summary,
    group_summary,
    memorisation_summary,
)
from lm_eval_it.stats.kl.divergence import kl_markdown
from lm_eval_it.stats.kl.statistic import KLStats
from lm_eval_it.stats.memorisation.statistic import MinKProb
from lm_eval_it.stats.temperature.sweep import TemperatureStats

log = logging.getLogger(__name__)


def statistics_for(cfg: RunConfig, scorer: Scorer, prepared: Prepared) -> list:
    """The per-token statistics this run reduces, beyond NLL."""
    temps = cfg.eval.temperatures
    stats: list = [ContextStats(prepared.protocol.window, prepared.protocol.stride), MinKProb(cfg.eval.min_k)]
    if temps:
        stats.append(TemperatureStats(temps, scorer.vocab))
    if scorer.reference is not None:
        stats.append(KLStats(temps or [1.0]))
    return stats


def available_compressors(wanted: list[str]) -> list[str]:
    """The configured compressors that this Python has (zstd needs the ``zstandard`` package)."""
    have = set(compressors_here())
    missing = [c for c in wanted if c not in have]
    if missing:
        warn_once(f"compression baselines: {', '.join(missing)} not available here (pip install zstandard); skipped")
    return [c for c in wanted if c in have]


def warn_once(message: str, _seen: set = set()) -> None:  # noqa: B006 - a process-wide memo on purpose
    if message not in _seen:
        _seen.add(message)
        log.warning(message)


def score_dataset(lm: LoadedModel, scorer: Scorer, docs: Documents, cfg: RunConfig, show_progress: bool,
                  tok_info: dict | None = None, folder: Path | None = None, ck: Checkpoint | None = None,
                  ctx: Context = Context(), reference_name: str | None = None) -> dict | None:
    """Score one dataset with one model; ``None`` on ranks other than 0 (they only score their shard)."""
    t0 = time.perf_counter()
    info = tok_info or tokenizer_info(lm.tokenizer)
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
    proto = prepared.protocol
    bs = cfg.eval.batch_size
    batch_size = bs if isinstance(bs, int) else broadcast(ctx, auto_batch_size(lm.device, proto.window, lm.model))
    if ck is not None and ctx.main:
        batch_size = ck.batch_size(lm.name, docs.name, batch_size)
    batch_size = broadcast(ctx, batch_size)
    stats = statistics_for(cfg, scorer, prepared)
    writer = None
    if cfg.output.per_token and folder is not None:  # every rank writes the rows it scores (rank 0: part-*)
        writer = PerTokenWriter(folder / f"per_token-{lm.name}-{docs.name}".replace("/", "_"), cfg.eval.temperatures,
                                ctx.rank)
    # eval.threads sets the forward's threads; the statistics' short kernels stay on one
    ex = Executor(prepared, scorer, stats, batch_size, stat_threads=1, token_sink=writer,
                  **part_hooks(ck, lm.name, docs.name, ctx))
    red = Reduction(ex.layout, prepared)
    done = ck.done(lm.name, docs.name) if ck and ctx.main else {}
    if ck is not None:  # parts of documents: shared by processes, or left open by an interrupt
        resume_parts(ex, ck, lm.name, docs.name, ctx, done)
    shard = None
    if ctx.active:
        # rank 0 alone reads the checkpoints, before any rank writes, so every rank skips the same documents
        ids_done = set(broadcast(ctx, sorted(done)))
        todo = [i for i, b in enumerate(ex.batches) if not all(int(d) in ids_done for d in prepared.plan.doc[b])]
        weights = [int(prepared.plan.length[ex.batches[i]].sum()) for i in todo]
        shard = [todo[j] for j in assign(weights, ctx.world)[ctx.rank]]
        done = done if ctx.main else {d: None for d in ids_done}
    n_resumed = len(done)
    for r in done.values():
        if r is not None:
            red.add(r)
    done = set(done)  # only the ids from here on: the decoded documents are folded into the reduction
    total = int(prepared.plan.scored.sum())
    bar = tqdm(total=total, unit="tok", unit_scale=True, disable=not (show_progress and ctx.main), leave=False,
               desc=f"{lm.name} · {docs.name}" + (f" · ≈ {ctx.world} ranks" if ctx.active else ""))
    n_docs, finished, scored = int((prepared.targets > 0).sum()), [len(done)], [0]
    t_score = time.perf_counter()

    def progress(tokens: int, docs_done: int, scored_here: bool) -> None:
        finished[0] += docs_done
        scored[0] += tokens if scored_here else 0  # tok/s counts only what this process scored
        bar.set_postfix_str(f"docs {min(finished[0], n_docs)}/{n_docs}" if not ctx.active else "", refresh=False)
        bar.update(tokens * ctx.world)

    for result in ex.run(done, shard, progress=progress, empty=ctx.main):
        if ck is not None:
            ck.record(lm.name, docs.name, result)
        red.add(result)
    bar.close()
    scoring_seconds = time.perf_counter() - t_score
    per_token = writer.close() if writer else None
    if ctx.active:
        parts = gather(ctx, ex.partial())
        tokens_all = gather(ctx, scored[0])
        # documents another rank finished whole: its reduction of them (exact sums, a few numbers per document)
        wholes = gather(ctx, None if ctx.main else red.export())
        written = gather(ctx, per_token)
        if not ctx.main:
            return None
        scored[0] = sum(tokens_all)
        for other in wholes[1:]:
            red.merge(other)
        for rank_parts in parts[1:]:
            for d, part in rank_parts:
                r = ex.merge_part(d, part)
                if r is not None:
                    red.add(r)
    if writer and ctx.active:
        per_token = dict(written[0], shards=sum(w["shards"] for w in written), rows=sum(w["rows"] for w in written))
    metrics, intervals, per_doc = dataset_metrics(red)
    summaries = summarize_statistics(stats, red, metrics, cfg, ex, ctx)
    memorisation = memorisation_summary(per_doc, prepared.zlib_bits, prepared.heads, cfg.eval.min_k)
    return {
        "model": lm.name,
        "dataset": docs.name,
        "model_fingerprint": lm.fingerprint,
        "dataset_fingerprint": docs.fingerprint,
        "tokenizer": info,
        "eval": {"window": proto.window, "stride": proto.stride, "window_unit": cfg.eval.window_unit,
                 "batch_size": batch_size, "prefix": proto.prefix, "prefix_token_id": proto.prefix_id,
                 "windows": int(len(prepared.plan)), "min_context": min_context(prepared.plan, proto.every_window),
                 "configured_window": proto.configured_window, "configured_stride": proto.configured_stride,
                 "text_tokens_per_window": proto.plan_window},
        "metrics": metrics,
        "intervals": intervals,
        "roundtrip": prepared.roundtrip,
        "temperature": summaries.get("temperature"),
        "kl": summaries.get("kl"),
        "kl_reference": reference_name,
        "context_length": summaries.get("context"),
        "compression": compression_summary(prepared.compression, metrics["bits_per_byte"]),
        "memorisation": memorisation,
        "groups": group_summary(per_doc, prepared.groups),
        "documents": len(prepared.targets),
        "timing": {"seconds": time.perf_counter() - t0, "scoring_seconds": scoring_seconds,
                   "tokens_scored_here": scored[0],
                   "tokens_per_second": scored[0] / scoring_seconds if scoring_seconds and scored[0] else None},
        "per_token": per_token,
        "resumed_documents": n_resumed,
        "per_document": per_doc,
    }


def summarize_statistics(stats, red: Reduction, metrics: dict, cfg: RunConfig, ex: Executor, ctx: Context) -> dict:
    out = {}
    per_doc_rows = sorted(red.rows)
    for stat in stats:
        totals = red.of(stat)
        context = {"tokens": metrics["tokens"], "bytes": metrics["bytes"], "extremes": red.extremes_of(stat),
                   "per_document": {}}
        for key in red.layout.per_document:
            if key.startswith(stat.name + "."):
                context["per_document"][key.split(".", 1)[1]] = red.per_doc_arrays(key, per_doc_rows)
        if isinstance(stat, TemperatureStats) and cfg.eval.best_temperature == "exact":
            context["refined"] = refine_best_temperature(stat, totals, ex, ctx)
            context["refine_passes"] = -(-len(context["refined"]) // 3)  # up to three temperatures a pass
        summary = stat.summarize(totals, context)
        if summary is not None:
            out[stat.name] = summary
    return out


def _model_entry(lm: LoadedModel, scorer: Scorer, tok_info: dict) -> dict:
    return {"name": lm.name, "fingerprint": lm.fingerprint, "source": lm.source, "dtype": lm.dtype,
            "device": lm.device, "max_positions": lm.max_positions, "load_seconds": lm.load_seconds,
            "vocab_size": scorer.vocab, "tokenizer": tok_info, "split_head": scorer.split_head,
            "tokenizer_fingerprint": getattr(lm, "tokenizer_fingerprint", None)}


def run(cfg: RunConfig, raw: dict, show_progress: bool = True, resume: str | None = None,
        details: bool = False) -> Path:
    """Run every model on every dataset and write the results folder; return it.

    It prints one compact table and the folder; ``details`` adds the other tables
    (:mod:`lm_eval_it.report.terminal`).

    Finished documents are checkpointed as they complete; the same command (or
    ``resume=<run folder>``) continues an interrupted run to identical numbers.
    """
    wall0 = time.perf_counter()
    torch.manual_seed(cfg.eval.seed)
    if cfg.eval.threads != "auto":
        torch.set_num_threads(int(cfg.eval.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.eval.device)
    ctx = init_distributed(device)
    if ctx.active and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    if cfg.output.run_name is None:
        cfg.output.run_name = "run"
    now = datetime.now(timezone.utc)
    datasets = [load_documents(d) for d in cfg.datasets]
    provenance = collect(device)
    provenance["world_size"] = ctx.world
    header = run_header(cfg.model_dump(), {d.name: d.fingerprint for d in datasets}, provenance["versions"],
                        device.split(":")[0])
    opened = None
    if ctx.main:
        try:
            opened = open_checkpoint(cfg, header, now, resume)
        except UserError as e:
            broadcast(ctx, ("error", str(e)))
            raise
    shared = broadcast(ctx, ("ok", str(opened[0])) if opened else None)
    if shared[0] == "error":
        raise UserError(shared[1])
    folder, ck = (opened if ctx.main else (Path(shared[1]), Checkpoint(Path(shared[1]), ctx.rank)))
    if not ctx.main:
        ck.begin(header)
    resumed = ck.count()
    try:
        rows, models = [], []
        references = {m.compare_to for m in cfg.models if m.compare_to}
        kept: dict[str, tuple[LoadedModel, Scorer]] = {}  # reference models stay loaded for their candidates

        def loaded(mcfg) -> tuple[LoadedModel, Scorer]:
            if mcfg.name in kept:
                return kept[mcfg.name]
            lm = load_model(mcfg, device)
            ck.model(lm.name, lm.fingerprint, getattr(lm, "tokenizer_fingerprint", None))
            pair = (lm, Scorer(lm.model, device, compile=mcfg.compile))
            if mcfg.name in references:
                kept[mcfg.name] = pair
            return pair

        by_name = {m.name: m for m in cfg.models}
        for mcfg in cfg.models:
            lm, scorer = loaded(mcfg)
            ref_name = None
            if mcfg.compare_to:
                ref_lm, ref_scorer = loaded(by_name[mcfg.compare_to])
                check_same_vocab(scorer, ref_scorer, lm.tokenizer, ref_lm.tokenizer)
                scorer = Scorer(lm.model, device, reference=ref_scorer, compile=mcfg.compile)
                ref_name = ref_lm.name
            tok_info = tokenizer_info(lm.tokenizer)
            models.append(_model_entry(lm, scorer, tok_info))
            for docs in datasets:
                row = score_dataset(lm, scorer, docs, cfg, show_progress, tok_info, folder, ck, ctx, ref_name)
                if row is not None:
                    rows.append(row)
            del scorer, lm
            gc.collect()
        if not ctx.main:
            return folder
        results = {
            "schema": 1,
            "complete": True,
            "run_name": cfg.output.run_name,
            "created": now.isoformat(timespec="seconds"),
            "wall_seconds": time.perf_counter() - wall0,
            "config": cfg.model_dump(),
            "raw_config": raw,
            "provenance": provenance,
            "resumed_documents": max(resumed, sum(r.get("resumed_documents", 0) for r in rows)),
            "models": models,
            "datasets": [{"name": d.name, "fingerprint": d.fingerprint, "source": d.source,
                          "documents": next((r["documents"] for r in rows if r["dataset"] == d.name), None),
                          "skipped_empty": skipped_empty(d)} for d in datasets],
            "results": rows,
        }
        extra_md = ""
        if len(cfg.models) > 1:
            results["comparison"] = build_comparison(rows, cfg.output.baseline, models=models)
            write_comparison(folder, results["comparison"], title=f"{cfg.output.run_name}: model comparison")
            extra_md = "## Comparison\n\n" + comparison_markdown(results["comparison"])
        extra_md += "".join("\n" + kl_markdown(r) for r in rows if r.get("kl"))
        pngs = {}
        if cfg.output.plots:
            from lm_eval_it.report.plots import render_all

            pngs = render_all(rows)
        write_run(folder, results, pngs, extra_md)
        ck.remove()
    except KeyboardInterrupt:
        raise interrupted(ck) from None
    except BaseException:
        ck.close()
        discard(ck)
        raise
    print(terminal_report(results, folder, details))
    return folder


def skipped_empty(docs: Documents) -> int | None:
    """Empty documents a dataset skipped; a streamed one knows it after its pass."""
    if docs.skipped_empty is not None:
        return docs.skipped_empty
    return getattr(docs.texts, "skipped_empty", None)


def check_same_vocab(cand: Scorer, ref: Scorer, cand_tok, ref_tok) -> None:
    if cand.vocab != ref.vocab or cand_tok.get_vocab() != ref_tok.get_vocab():
        raise UserError("compare_to: the two models' vocabularies differ "
                        f"({cand.vocab} vs {ref.vocab} entries); KL needs identical vocabularies")
