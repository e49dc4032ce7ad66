"""The Python API: evaluate a model — a live ``PreTrainedModel`` or a path — on texts or a dataset.

For notebooks and training loops: nothing is printed or written unless asked
(``progress=True``, ``output_dir=…``), a live model is scored as it is (its
training mode is restored afterwards, no gradients are kept), and the answer is
a typed :class:`EvalResult`.

Example::

    from lm_eval_it import evaluate
    res = evaluate(model=model, tokenizer=tok, texts=["The cat sat.", "Another document."], window=512)
    res.bits_per_byte, res.metrics["token_perplexity"], res.per_document[0]["nll"]
    evaluate(model="HuggingFaceTB/SmolLM2-135M", dataset={"builtin": "wikitext2"}, temperatures=[0.8, 1.0, 1.2])
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from lm_eval_it.backends.hf.backend import HFBackend
from lm_eval_it.backends import registry
from lm_eval_it.backends.hf.load import resolve_device
from lm_eval_it.config.load import parse_config
from lm_eval_it.config.schema import DatasetConfig
from lm_eval_it.data.documents import Documents
from lm_eval_it.report.summary import write_run
from lm_eval_it.run.document import model_entry, results_document
from lm_eval_it.run.provenance import collect
from lm_eval_it.run.results import DatasetResult
from lm_eval_it.run.rundir import prepare_output
from lm_eval_it.run.runner import run
from lm_eval_it.run.scoring import score_dataset
from lm_eval_it.run.statistics import refuse_unmet_needs


class EvalResult(DatasetResult):
    """One model × dataset: metrics (sum then divide), intervals, per-document rows, and the optional blocks.

    It is the results row of results.json (:class:`lm_eval_it.run.results.DatasetResult`): ``model``,
    ``dataset``, ``metrics``, ``intervals``, ``per_document``, the blocks ``temperature``, ``kl``,
    ``context_length``, ``compression``, ``memorisation``, ``groups`` (``None`` when not computed), and
    ``folder``, the run folder when one was written. ``to_dict()`` is the results.json entry.
    """


def _eval_section(window, stride, temperatures, options) -> dict:
    ev = {"window": window, **options}
    if stride is not None:
        ev["stride"] = stride
    if temperatures:
        ev["temperatures"] = list(temperatures)
    return ev


def evaluate(model: Any, tokenizer: Any = None, texts: list[str] | None = None, dataset: dict | str | None = None,
             window: int = 1024, stride: int | None = None, temperatures=(), name: str | None = None,
             output_dir: str | Path | None = None, progress: bool = False, backend: str = "hf",
             backend_options: dict | None = None, **eval_options) -> EvalResult | list:
    """Score ``model`` on ``texts`` (a list of documents) or ``dataset`` (a dataset entry as in a config).

    Args:
        model: a live ``PreTrainedModel`` (then ``tokenizer`` too; scored as it is, its training mode
            restored, no gradients kept) or a hub id, a local folder or a ``.gguf`` file.
        tokenizer: the live model's tokenizer (ignored for a path).
        texts: the documents, one string each (empty ones are skipped). Give this or ``dataset``.
        dataset: a dataset entry as in a config (``{"builtin": "wikitext2"}``, ``{"path": "notes.jsonl"}``,
            ``{"hub": "org/name", "split": "test"}``), or a file path.
        window: tokens of context per forward pass.
        stride: tokens scored per window (default: the window).
        temperatures: also sweep these sampling temperatures (T = 1 is added); see ``EvalResult.temperature``.
        name: the model's name in the results (and the run name).
        output_dir: also write the run folder (results.json, summary.md, report.html) under it;
            by default nothing is written.
        progress: show a progress bar (default: print nothing).
        backend: for a path, what scores it: ``hf`` (transformers), ``llama.cpp`` (a GGUF in llama.cpp) or
            ``openai`` (a served model; the path is then its local tokenizer).
        backend_options: the model entry's ``llama_cpp:`` or ``openai:`` section (e.g. ``{"n_batch": 2048}``,
            ``{"base_url": "http://127.0.0.1:8000/v1"}``). A served model's server gone mid-run raises
            :class:`lm_eval_it.run.rundir.RunInterrupted` (its ``reason`` says why), as Ctrl-C does.
        **eval_options: any other ``eval`` key of a config: ``prefix``, ``batch_size``, ``device``,
            ``best_temperature``, ``window_unit``, ``min_k`` ...

    Returns:
        An :class:`EvalResult`: ``bits_per_byte``, ``perplexity`` (per token), ``metrics`` (sums, then
        every ratio), ``intervals`` (95% t intervals over documents, linearised), ``per_document``, and the sweep,
        context-length, compression, memorisation and group blocks; ``to_dict()`` is the results.json entry.

    Raises:
        ValueError: neither or both of ``texts`` and ``dataset``, or a live model without its tokenizer.
        lm_eval_it.errors.UserError: a bad option, path or dataset (its message says which).

    Example::

        res = evaluate(model=model, tokenizer=tok, texts=["The cat sat.", "Another one."], window=512)
        res.bits_per_byte, res.intervals["bits_per_byte"], res.per_document[0]["nll"]
    """
    if (texts is None) == (dataset is None):
        raise ValueError("give exactly one of texts= or dataset=")
    data = dataset if isinstance(dataset, dict) else {"path": dataset} if dataset else None
    live = not isinstance(model, (str, Path))
    raw = {"models": [_model_entry(model, live, name, backend, backend_options)],
           "datasets": [data or {"builtin": "pydoc_topics"}],
           "eval": _eval_section(window, stride, temperatures, eval_options),
           "output": {"dir": str(output_dir or "results"), "run_name": name or "evaluate",
                      "plots": output_dir is not None}}
    if data and "path" in data and "name" not in data and texts is None:
        DatasetConfig(**data)  # fail early, with the config's message, on a bad entry
    cfg = parse_config(raw, source="evaluate()")
    refuse_unmet_needs(cfg)  # as the CLI does: a statistic the backend cannot serve, refused before anything loads
    if not live and texts is not None:  # a path and in-memory texts: load it with its backend, then score
        return _score_texts(registry.load_model(cfg.models[0], resolve_device(cfg.eval.device)), texts, cfg, raw,
                            output_dir, progress)
    if not live:
        if output_dir:
            return _rows(run(cfg, raw, show_progress=progress), keep=True)
        return _run_quiet(cfg, raw, progress)
    return _evaluate_live(model, tokenizer, texts, cfg, raw, name, output_dir, progress)


def _model_entry(model, live: bool, name: str | None, backend: str, options: dict | None) -> dict:
    """The config's model entry for ``evaluate()``'s model: a path (with its backend and options) or a live one."""
    entry = {"path": "<in-memory>" if live else str(model), **({"name": name} if name else {})}
    if backend != "hf":
        entry["backend"] = backend
    if options is not None:
        entry[backend.replace(".", "_")] = options
    return entry


def _run_quiet(cfg, raw, progress):
    """A run into a temporary folder that is removed afterwards: nothing printed, nothing left behind."""
    with tempfile.TemporaryDirectory(prefix="lm_eval_it-") as tmp:
        cfg.output.dir = tmp
        with contextlib.redirect_stdout(io.StringIO()):
            return _rows(run(cfg, raw, show_progress=progress), keep=False)


def _rows(folder: Path, keep: bool):
    res = json.loads((Path(folder) / "results.json").read_text())
    rows = [EvalResult.from_row(r, Path(folder) if keep else None) for r in res["results"]]
    return rows[0] if len(rows) == 1 else rows


def _evaluate_live(model, tokenizer, texts, cfg, raw, name, output_dir, progress) -> EvalResult:
    if tokenizer is None:
        raise ValueError("a live model needs its tokenizer= as well")
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("texts holds no non-empty document")
    device = str(next(model.parameters()).device) if cfg.eval.device == "auto" else resolve_device(cfg.eval.device)
    was_training = model.training
    model.eval()
    try:
        lm = HFBackend.from_live(model, tokenizer, name or type(model).__name__, device)
        return _score_texts(lm, texts, cfg, raw, output_dir, progress)
    finally:
        model.train(was_training)


def _score_texts(lm, texts, cfg, raw, output_dir, progress) -> EvalResult:
    """Score in-memory ``texts`` with a loaded backend; the run folder too when ``output_dir`` is set."""
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError("texts holds no non-empty document")
    docs = Documents(name="texts", texts=list(texts), source={"in_memory": True})
    with torch.inference_mode():
        scorer = lm.scorer()
        row = score_dataset(lm, scorer, docs, cfg, show_progress=progress)
    folder = None
    if output_dir is not None:
        folder = _write(row, cfg, raw, lm, scorer, docs)
    return EvalResult.from_row(row, folder)


def _write(row, cfg, raw, lm, scorer, docs) -> Path:
    """The run folder of a live model, built as the command line builds it (one model, one dataset)."""
    now = datetime.now(timezone.utc)
    folder = prepare_output(cfg, now)
    doc = results_document(cfg, raw, now, row.timing.seconds, collect(lm.device), 0,
                           [model_entry(lm.facts(scorer))], [docs], [row])
    write_run(folder, doc.to_dict(), {}, "")
    return folder
