"""The run: config → models → documents → prepare → execute → summarize → report, in named steps.

:func:`run` sets up torch and the ranks, opens the run folder (or the one to resume), scores every model
on every dataset (:func:`lm_eval_it.run.scoring.score_dataset`), then builds results.json
(:mod:`lm_eval_it.run.document`) and the reports. A model is loaded in one place, :func:`load`.

Example (a tiny random model; see tests/conftest.py for ``tiny_model_dir``)::

    cfg, raw = load_config("configs/quickstart.yaml")
    folder = run(cfg, raw)          # results/<run>/<timestamp>/results.json
"""

from __future__ import annotations

import gc
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from lm_eval_it.backends.base import Backend, WindowScorer
from lm_eval_it.backends.hf.load import resolve_device
from lm_eval_it.backends.registry import load_model
from lm_eval_it.config.schema import ModelConfig, RunConfig
from lm_eval_it.data.documents import Documents, load_documents
from lm_eval_it.engine.checkpoint import Checkpoint, run_header
from lm_eval_it.engine.distributed import Context, broadcast
from lm_eval_it.engine.distributed import init as init_distributed
from lm_eval_it.errors import RunStopped, UserError
from lm_eval_it.report.compare.build import (
    build_comparison,
    comparison_markdown,
    write_comparison,
)
from lm_eval_it.report.plots import render_all
from lm_eval_it.report.summary import write_run
from lm_eval_it.report.terminal import terminal_report
from lm_eval_it.run.document import model_entry, results_document
from lm_eval_it.run.provenance import collect
from lm_eval_it.run.results import DatasetResult, ModelEntry
from lm_eval_it.run.rundir import discard, interrupted, open_checkpoint
from lm_eval_it.run.scoring import score_dataset
from lm_eval_it.run.statistics import refuse_unmet_needs
from lm_eval_it.report.views_sections import view_sources


def run(cfg: RunConfig, raw: dict, show_progress: bool = True, resume: str | None = None,
        details: bool = False) -> Path:
    """Run every model on every dataset and write the results folder; return it.

    It prints one compact table and the folder; ``details`` adds the other tables
    (:mod:`lm_eval_it.report.terminal`).

    Finished documents are checkpointed as they complete; the same command (or
    ``resume=<run folder>``) continues an interrupted run to identical numbers.
    """
    wall0 = time.perf_counter()
    refuse_unmet_needs(cfg)  # a statistic its backend cannot serve: refused before anything loads
    device, ctx = setup(cfg)
    if cfg.output.run_name is None:
        cfg.output.run_name = "run"
    now = datetime.now(timezone.utc)
    datasets = [load_documents(d) for d in cfg.datasets]
    provenance = collect(device)
    provenance["world_size"] = ctx.world
    header = run_header(cfg.model_dump(), {d.name: d.fingerprint for d in datasets}, provenance["versions"],
                        device.split(":")[0])
    folder, ck = open_run(cfg, header, now, resume, ctx)
    resumed = ck.count()
    try:
        models, rows = score_models(cfg, datasets, device, folder, ck, ctx, show_progress)
        if not ctx.main:
            return folder
        wall_seconds = time.perf_counter() - wall0
        results = write_results(cfg, raw, now, wall_seconds, provenance, resumed, models, datasets, rows, folder)
        ck.remove()
    except KeyboardInterrupt:
        raise interrupted(ck) from None
    except RunStopped as e:  # a server gone: kept and resumable, as after Ctrl-C
        raise interrupted(ck, str(e)) from None
    except BaseException:
        ck.close()
        discard(ck)
        raise
    print(terminal_report(results, folder, details))
    return folder


def setup(cfg: RunConfig) -> tuple[str, Context]:
    """Seed, threads and determinism; the device, and this process's rank under torchrun."""
    torch.manual_seed(cfg.eval.seed)
    if cfg.eval.threads != "auto":
        torch.set_num_threads(int(cfg.eval.threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = resolve_device(cfg.eval.device)
    ctx = init_distributed(device)
    if ctx.active and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    return device, ctx


def open_run(cfg: RunConfig, header: dict, now: datetime, resume: str | None,
             ctx: Context) -> tuple[Path, Checkpoint]:
    """The run folder and its checkpoint: rank 0 opens (or resumes) it, the other ranks join it."""
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
    if ctx.main:
        return opened
    ck = Checkpoint(Path(shared[1]), ctx.rank)
    ck.begin(header)
    return Path(shared[1]), ck


def load(mcfg: ModelConfig, device: str, ck: Checkpoint) -> tuple[Backend, WindowScorer]:
    """The one place a model is loaded (by its backend): weights and tokenizer, its note in the checkpoint, its scorer."""
    lm = load_model(mcfg, device)
    ck.model(lm.name, lm.fingerprint, getattr(lm, "tokenizer_fingerprint", None))
    return lm, lm.scorer()


class Models:
    """The models as the run scores them: a reference (``compare_to``) stays loaded for its candidates."""

    def __init__(self, cfg: RunConfig, device: str, ck: Checkpoint):
        self.by_name = {m.name: m for m in cfg.models}
        self.references = {m.compare_to for m in cfg.models if m.compare_to}
        self.kept: dict[str, tuple[Backend, WindowScorer]] = {}
        self.device, self.ck = device, ck

    def loaded(self, mcfg: ModelConfig) -> tuple[Backend, WindowScorer]:
        if mcfg.name in self.kept:
            return self.kept[mcfg.name]
        pair = load(mcfg, self.device, self.ck)
        if mcfg.name in self.references:
            self.kept[mcfg.name] = pair
        return pair

    def scoring(self, mcfg: ModelConfig) -> tuple[Backend, WindowScorer, str | None]:
        """The model, its scorer (with its reference's, for KL) and the reference's name."""
        lm, scorer = self.loaded(mcfg)
        if not mcfg.compare_to:
            return lm, scorer, None
        ref_lm, ref_scorer = self.loaded(self.by_name[mcfg.compare_to])
        check_same_vocab(scorer, ref_scorer, lm.tokenizer, ref_lm.tokenizer)
        return lm, lm.scorer(reference=ref_scorer), ref_lm.name


def score_models(cfg: RunConfig, datasets: list[Documents], device: str, folder: Path, ck: Checkpoint,
                 ctx: Context, show_progress: bool) -> tuple[list[ModelEntry], list[DatasetResult]]:
    """Every model on every dataset: the models' entries and the rows (rank 0 only; other ranks: none)."""
    rows, models, loader = [], [], Models(cfg, device, ck)
    for mcfg in cfg.models:
        lm, scorer, ref_name = loader.scoring(mcfg)
        facts = lm.facts(scorer)
        tok_info = facts.tokenizer
        models.append(model_entry(facts))
        for docs in datasets:
            row = score_dataset(lm, scorer, docs, cfg, show_progress, tok_info, folder, ck, ctx, ref_name)
            if row is not None:
                rows.append(row)
        del scorer, lm
        gc.collect()
    return models, rows


def write_results(cfg: RunConfig, raw: dict, now: datetime, wall_seconds: float, provenance: dict, resumed: int,
                  models: list[ModelEntry], datasets: list[Documents], rows: list[DatasetResult],
                  folder: Path) -> dict:
    """results.json and the reports (comparison with several models, KL, plots); the results as written."""
    row_dicts = [r.to_dict() for r in rows]
    comparison, extra_md = None, ""
    if len(cfg.models) > 1:
        comparison = build_comparison(row_dicts, cfg.output.baseline,
                                      models=[m.model_dump(by_alias=True, exclude_unset=True) for m in models])
        write_comparison(folder, comparison, title=f"{cfg.output.run_name}: model comparison",
                         views=view_sources(row_dicts, folder), show=cfg.output.views.show)
        extra_md = "## Comparison\n\n" + comparison_markdown(comparison)
    pngs = {}
    if cfg.output.plots:
        pngs = render_all(row_dicts)
    results = results_document(cfg, raw, now, wall_seconds, provenance, resumed, models, datasets, rows,
                               comparison).to_dict()
    write_run(folder, results, pngs, extra_md)
    return results


def check_same_vocab(cand: WindowScorer, ref: WindowScorer, cand_tok, ref_tok) -> None:
    if cand.vocab != ref.vocab or cand_tok.get_vocab() != ref_tok.get_vocab():
        raise UserError("compare_to: the two models' vocabularies differ "
                        f"({cand.vocab} vs {ref.vocab} entries); KL needs identical vocabularies")
