"""The one builder of results.json: its rows, models, datasets and the document, for the CLI and ``evaluate()``.

Example::

    >>> from types import SimpleNamespace as NS
    >>> docs = NS(name="d", fingerprint="f", source={"path": "d.txt"}, skipped_empty=0, texts=[])
    >>> dataset_entry(docs, []).model_dump()
    {'name': 'd', 'fingerprint': 'f', 'source': {'path': 'd.txt'}, 'documents': None, 'skipped_empty': 0}
"""

from __future__ import annotations

from datetime import datetime

from lm_eval_it.run.results import (
    SCHEMA,
    DatasetEntry,
    DatasetResult,
    ModelEntry,
    ResultsDocument,
)


def dataset_result(lm, docs, tokenizer: dict, protocol: dict, metrics: dict, intervals: dict, roundtrip: dict,
                   blocks: dict, documents: int, timing: dict, per_token: dict | None, resumed_documents: int,
                   per_document: list[dict], views: dict | None = None) -> DatasetResult:
    """One model × dataset row; ``blocks`` are the statistic blocks (``run.statistics.stat_blocks``)."""
    return DatasetResult(
        model=lm.name, dataset=docs.name, model_fingerprint=lm.fingerprint, dataset_fingerprint=docs.fingerprint,
        tokenizer=tokenizer, eval=protocol, metrics=metrics, intervals=intervals, roundtrip=roundtrip, **blocks,
        documents=documents, timing=timing, per_token=per_token, resumed_documents=resumed_documents,
        per_document=per_document, views=views)


def model_entry(facts) -> ModelEntry:
    """One model as it ran (``facts``: its backend's :class:`lm_eval_it.backends.base.ModelFacts`)."""
    return ModelEntry(**facts.entry())


def skipped_empty(docs) -> int | None:
    """Empty documents a dataset skipped; a streamed one knows it after its pass."""
    if docs.skipped_empty is not None:
        return docs.skipped_empty
    return getattr(docs.texts, "skipped_empty", None)


def dataset_entry(docs, rows: list[DatasetResult]) -> DatasetEntry:
    """One dataset (``docs``: ``Documents``), its document count from the first row that scored it."""
    return DatasetEntry(name=docs.name, fingerprint=docs.fingerprint, source=docs.source,
                        documents=next((r.documents for r in rows if r.dataset == docs.name), None),
                        skipped_empty=skipped_empty(docs))


def results_document(cfg, raw: dict, created: datetime, wall_seconds: float, provenance: dict, resumed: int,
                     models: list[ModelEntry], datasets: list, rows: list[DatasetResult],
                     comparison: list[dict] | None = None) -> ResultsDocument:
    """The whole document (``cfg``: the ``RunConfig``; ``datasets``: the ``Documents`` read)."""
    doc = ResultsDocument(
        schema=SCHEMA, complete=True, run_name=cfg.output.run_name, created=created.isoformat(timespec="seconds"),
        wall_seconds=wall_seconds, config=cfg.model_dump(), raw_config=raw, provenance=provenance,
        resumed_documents=max(resumed, sum(r.resumed_documents for r in rows)), models=models,
        datasets=[dataset_entry(d, rows) for d in datasets], results=rows,
        **({} if comparison is None else {"comparison": comparison}))
    return doc
