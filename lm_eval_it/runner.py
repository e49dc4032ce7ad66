"""The run: config → models → documents → windows → scores → metrics → report.

Example (a tiny random model; see tests/conftest.py for ``tiny_model_dir``)::

    cfg, raw = load_config("configs/quickstart.yaml")
    folder = run(cfg, raw)          # results/<run>/<timestamp>/results.json
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .compare import build_comparison, comparison_markdown, write_comparison
from .config import RunConfig
from .checkpoint import Checkpoint, run_header
from .rundir import RunInterrupted, open_checkpoint, write_per_token
from .data import Documents, load_documents
from .distributed import Context, assign, broadcast, gather
from .distributed import init as init_distributed
from .errors import UserError
from .kl import PairScorer, kl_markdown, summarize_kl
from .metrics import Totals, summarize
from .models import LoadedModel, load_model, resolve_device
from .provenance import collect
from .report import sweep_markdown, text_table, write_run
from .sweep import summarize_sweep
from .scoring import DocScore, Scorer, auto_batch_size
from .stats import metric_intervals
from .tokens import encode_cached, resolve_prefix, roundtrip_report, tokenizer_info, with_prefix
from .windows import min_context, plan_windows

log = logging.getLogger(__name__)


def token_window(cfg: RunConfig, lm: LoadedModel, bytes_per_token: float) -> tuple[int, int]:
    """The window and stride in tokens for this model: converted from bytes if asked, then clamped."""
    window, stride = cfg.eval.window, cfg.eval.stride
    if cfg.eval.window_unit == "bytes":
        window = max(2, round(window / bytes_per_token))
        stride = max(1, min(window, round(stride / bytes_per_token)))
    if lm.max_positions and window > lm.max_positions:
        if cfg.eval.strict_window:
            raise UserError(f"eval.window: {window} tokens exceeds {lm.name}'s maximum of {lm.max_positions} "
                            "positions; lower it, or drop strict_window to clamp")
        log.warning("eval.window %d tokens exceeds %s's maximum of %d positions; clamped to %d",
                    window, lm.name, lm.max_positions, lm.max_positions)
        window = lm.max_positions
        stride = min(stride, window)
    return window, stride


def scored_text(text: str, ids: list[int], prefix_id: int | None, tokenizer) -> str:
    """The text whose tokens are scored: all of it, unless there is no prefix token."""
    if prefix_id is not None or not ids:
        return text
    first = tokenizer.decode(ids[:1])
    return text[len(first):] if text.startswith(first) else text


def check_roundtrip(lm: LoadedModel, docs: Documents, ids: list[list[int]]) -> dict:
    """decode(encode(text)) == text for every document; warn loudly when not."""
    decoded = [lm.tokenizer.decode(x, clean_up_tokenization_spaces=False) for x in ids]
    report = roundtrip_report(docs.texts, decoded)
    if report["lossy_documents"]:
        sample = report["sample"] or {}
        log.warning("LOSSY TOKENIZER: %s does not reproduce %d of %d documents of %s (%d bytes differ; e.g. %r "
                    "became %r). It scores its normalised text, so bits per byte is not exactly comparable.",
                    lm.name, report["lossy_documents"], len(docs.texts), docs.name, report["lossy_bytes"],
                    sample.get("text"), sample.get("decoded"))
    return report


def score_dataset(lm: LoadedModel, scorer: Scorer, docs: Documents, cfg: RunConfig, show_progress: bool,
                  tok_info: dict | None = None, folder: Path | None = None, ck: Checkpoint | None = None,
                  ctx: Context = Context()) -> dict | None:
    """Score one dataset with one model; ``None`` on ranks other than 0 (they only score their shard)."""
    prefix_id, prefix_desc = resolve_prefix(lm.tokenizer, cfg.eval.prefix)
    t0 = time.perf_counter()
    info = tok_info or tokenizer_info(lm.tokenizer)
    ids = encode_cached(lm.tokenizer, docs.texts, f"{info['fingerprint']}:{docs.fingerprint}")
    n_bytes = sum(len(t.encode("utf-8")) for t in docs.texts)
    n_tokens = sum(len(x) for x in ids)
    window, stride = token_window(cfg, lm, n_bytes / max(1, n_tokens))
    bs = cfg.eval.batch_size
    batch_size = bs if isinstance(bs, int) else broadcast(ctx, auto_batch_size(lm.device, window, lm.model))
    every = cfg.eval.prefix == "bos_every_window"
    plan_w, plan_s = (window - 1, min(stride, window - 1)) if every else (window, stride)
    seqs = [with_prefix(x, prefix_id) for x in ids]
    plans = [plan_windows(len(s), plan_w, plan_s) for s in seqs]
    roundtrip = check_roundtrip(lm, docs, ids)
    total = sum(w.n_scored for p in plans for w in p)
    done = ck.done(lm.name, docs.name) if ck and ctx.main else {}
    shard = None
    if ctx.active:
        # rank 0 alone reads the checkpoints, before any rank writes for this dataset, so that every
        # rank skips the same documents and deals out the same batches; the others only need the ids
        ids_done = broadcast(ctx, sorted(done))
        if not ctx.main:
            done = {d: DocScore(np.zeros(0, np.float32), {}, np.zeros(0, bool)) for d in ids_done}
        # deal out the batches still to do, balanced by tokens
        batches = scorer.plan_batches(plans, batch_size)
        todo = [i for i, b in enumerate(batches) if not all(it.doc in done for it in b)]
        shard = [todo[j] for j in assign([sum(it.window.length for it in batches[i]) for i in todo], ctx.world)[ctx.rank]]
    bar = tqdm(total=total, unit="tok", unit_scale=True, disable=not (show_progress and ctx.main), leave=False,
               desc=f"{lm.name} · {docs.name}" + (f" · ≈ {ctx.world} ranks" if ctx.active else ""))
    n_docs = sum(1 for p in plans if p)
    finished = [0]

    def progress(tokens: int, docs_done: int) -> None:
        finished[0] += docs_done
        bar.set_postfix_str(f"docs {finished[0]}/{n_docs}" if not ctx.active else "", refresh=False)
        bar.update(tokens * ctx.world)  # shards are balanced by tokens: rank 0 stands for the whole run

    scores: list[DocScore] = scorer.score(seqs, plans, batch_size, progress=progress,
                                          doc_names=[f"#{i}" for i in range(len(seqs))],
                                          window_prefix=prefix_id if every else None,
                                          done=done,
                                          on_doc=(lambda d, sc: ck.record(lm.name, docs.name, d, sc)) if ck else None,
                                          shard=shard)
    bar.close()
    scoring_seconds = time.perf_counter() - t0
    if ctx.active:
        parts = gather(ctx, [(d, sc) for d, sc in enumerate(scores) if sc.covered is None or sc.covered.any()])
        if not ctx.main:
            return None
        for rank_parts in parts[1:]:
            for d, part in rank_parts:
                scores[d] = scores[d].merge(part) if scores[d].covered is not None else scores[d]
    per_doc, totals = [], Totals()
    for i, (text, x, s) in enumerate(zip(docs.texts, ids, scores)):
        t = Totals.of_text(scored_text(text, x, prefix_id, lm.tokenizer), s.nll, s.tokens)
        totals = totals + t
        per_doc.append({"index": i, "nll": t.nll, "tokens": t.tokens, "bytes": t.bytes,
                        "words": t.words, "chars": t.chars})
    kl = None
    if isinstance(scorer, PairScorer):
        kl = summarize_kl(scores, scorer.kl_temperatures)
    sweep = None
    if cfg.eval.temperatures:
        sweep = summarize_sweep(scores, totals.bytes, cfg.eval.temperatures, scorer, vocab=scorer.vocab)
    seconds = time.perf_counter() - t0
    if cfg.output.per_token and folder is not None:
        write_per_token(folder / f"per_token-{lm.name}-{docs.name}.npz".replace("/", "_"), seqs, scores,
                        cfg.eval.temperatures)
    return {
        "model": lm.name,
        "dataset": docs.name,
        "model_fingerprint": lm.fingerprint,
        "dataset_fingerprint": docs.fingerprint,
        "tokenizer": info,
        "eval": {"window": window, "stride": stride, "window_unit": cfg.eval.window_unit,
                 "batch_size": batch_size, "prefix": prefix_desc, "prefix_token_id": prefix_id,
                 "windows": sum(len(p) for p in plans),
                 "min_context": min((min_context(p) for p in plans if p), default=0)},
        "metrics": summarize(totals),
        "intervals": metric_intervals(per_doc),
        "roundtrip": roundtrip,
        "temperature": sweep,
        "kl": kl,
        "kl_reference": scorer.reference_name if isinstance(scorer, PairScorer) else None,
        "timing": {"seconds": seconds, "scoring_seconds": scoring_seconds,
                   "tokens_per_second": totals.tokens / scoring_seconds if scoring_seconds else None},
        "per_document": per_doc,
    }


def run(cfg: RunConfig, raw: dict, show_progress: bool = True, resume: str | None = None) -> Path:
    """Run every model on every dataset and write the results folder; return it.

    Finished documents are checkpointed as they complete; the same command (or
    ``resume=<run folder>``) continues an interrupted run to identical numbers.
    """
    wall0 = time.perf_counter()
    torch.manual_seed(cfg.eval.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.eval.device)
    ctx = init_distributed(device)
    if ctx.active and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    now = datetime.now(timezone.utc)
    datasets = [load_documents(d) for d in cfg.datasets]
    provenance = collect(device)
    provenance["world_size"] = ctx.world
    header = run_header(cfg.model_dump(), {d.name: d.fingerprint for d in datasets}, provenance["versions"])
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
        temps = cfg.eval.temperatures
        references = {m.compare_to for m in cfg.models if m.compare_to}
        kept: dict[str, tuple[LoadedModel, Scorer]] = {}  # reference models stay loaded for their candidates

        def loaded(mcfg) -> tuple[LoadedModel, Scorer]:
            if mcfg.name in kept:
                return kept[mcfg.name]
            lm = load_model(mcfg, device)
            ck.model(lm.name, lm.fingerprint)
            pair = (lm, Scorer(lm.model, device, temperatures=temps, keep_hidden=bool(temps)))
            if mcfg.name in references:
                kept[mcfg.name] = pair
            return pair

        by_name = {m.name: m for m in cfg.models}
        for mcfg in cfg.models:
            lm, scorer = loaded(mcfg)
            if mcfg.compare_to:
                ref_lm, ref_scorer = loaded(by_name[mcfg.compare_to])
                scorer = PairScorer(scorer, ref_scorer, temps or [1.0], lm.tokenizer, ref_lm.tokenizer, ref_lm.name)
            tok_info = tokenizer_info(lm.tokenizer)
            models.append({"name": lm.name, "fingerprint": lm.fingerprint, "source": lm.source, "dtype": lm.dtype,
                           "device": lm.device, "max_positions": lm.max_positions, "load_seconds": lm.load_seconds,
                           "vocab_size": scorer.vocab, "tokenizer": tok_info,
                           "split_head": scorer.split_head})
            for docs in datasets:
                row = score_dataset(lm, scorer, docs, cfg, show_progress, tok_info, folder, ck, ctx)
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
            "resumed_documents": resumed,
            "models": models,
            "datasets": [{"name": d.name, "fingerprint": d.fingerprint, "source": d.source,
                          "documents": len(d.texts), "skipped_empty": d.skipped_empty} for d in datasets],
            "results": rows,
        }
        extra_md = ""
        if len(cfg.models) > 1:
            results["comparison"] = build_comparison(rows, cfg.output.baseline)
            write_comparison(folder, results["comparison"], title=f"{cfg.output.run_name}: model comparison")
            extra_md = "## Comparison\n\n" + comparison_markdown(results["comparison"])
        extra_md += "".join("\n" + kl_markdown(r) for r in rows if r.get("kl"))
        pngs = {}
        if cfg.output.plots:
            from .plots import render_all

            pngs = render_all(rows)
        write_run(folder, results, pngs, extra_md)
        ck.remove()
    except KeyboardInterrupt:
        raise RunInterrupted(folder, ck.count()) from None
    except BaseException:
        if ctx.main and ck.count() == 0 and not (folder / "results.json").exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise
    print(text_table(rows))
    if "comparison" in results:
        print("\n" + comparison_markdown(results["comparison"]))
    sweep_md = sweep_markdown(rows)
    if sweep_md:
        print("\n" + sweep_md)
    for r in rows:
        if r.get("kl"):
            print("\n" + kl_markdown(r))
    print(f"\nresults: {folder}")
    return folder
