"""Dataset-level findings beyond one perplexity: compression baselines, memorisation signals, groups.

Pure functions over what prepare and summarize already hold (per-document rows,
per-document zlib sizes, the whole-dataset compressed sizes), so they cost no
extra pass over the tokens.

* **Compression baselines** (Delétang et al. 2023): each compressor's whole
  output in bits, headers included, divided by the input UTF-8 bytes, for the
  dataset's documents concatenated in order; the model's bits per byte is also
  given as a ratio to the best compressor.
* **Memorisation signals** per document: zlib ratio (Carlini et al. 2021:
  model bits / zlib -9 bits of the same text; low is suspicious) and Min-K%
  prob (Shi et al. 2023: mean log-probability of the k% least likely tokens;
  high is suspicious), each with a robust z-score within the dataset; the most
  flagged documents are listed with their first 200 characters.
* **Groups** (as Paloma): per-group metrics with intervals, and the micro
  (all bytes) and macro (mean over groups) bits per byte.

Example::

    >>> compression_summary({"bytes_in": 100, "compressed_bytes": {"gzip": 40, "bz2": 30}}, 1.2)["best"]
    'bz2'
"""

from __future__ import annotations

import math

import numpy as np

from lm_eval_it.stats.groups import group_results
from lm_eval_it.stats.memorisation.signals import (
    DEFAULT_THRESHOLD,
    robust_z,
    top_flagged,
)

LN2 = math.log(2.0)

FLAGGED_TOP = 10  # flagged documents listed at most (the views record at least as many candidates)


def compression_summary(compression: dict | None, model_bits_per_byte: float) -> dict | None:
    if not compression or not compression["bytes_in"]:
        return None
    n = compression["bytes_in"]
    per = {name: {"bits_per_byte": 8.0 * out / n, "bytes_out": out} for name, out in compression["compressed_bytes"].items()}
    best = min(per, key=lambda k: per[k]["bits_per_byte"]) if per else None
    out = {"bytes_in": n, "compressors": per, "best": best,
           "definition": "whole compressed output in bits (headers included) / input UTF-8 bytes; documents "
                         "concatenated in order; gzip -9, bz2 -9, xz preset 9, zstd -19"}
    if best:
        out["best_bits_per_byte"] = per[best]["bits_per_byte"]
        out["model_to_best_ratio"] = model_bits_per_byte / per[best]["bits_per_byte"]
    return out



def memorisation_summary(per_doc: list[dict], zlib_bits: np.ndarray, heads: list[str], k: float,
                         top: int = FLAGGED_TOP, threshold: float = DEFAULT_THRESHOLD) -> dict:
    """Adds ``zlib_ratio`` to each per-document row; robust z-scores and the top flagged documents."""
    rows = []
    for r in per_doc:
        d = r["index"]
        r["zlib_ratio"] = (r["nll"] / LN2 / float(zlib_bits[d])) if r["tokens"] and zlib_bits[d] else math.nan
        rows.append({"doc": d, "zlib_ratio": r["zlib_ratio"], "min_k": r.get("min_k_logprob", math.nan),
                     "text": heads[d]})
    z_zlib = robust_z([x["zlib_ratio"] for x in rows])
    z_mink = robust_z([x["min_k"] for x in rows])
    for r, a, b in zip(per_doc, z_zlib, z_mink):
        r["zlib_ratio_z"], r["min_k_z"] = float(a), float(b)
    return {"k_percent": k, "threshold_z": threshold,
            "definition": "zlib ratio = model bits / zlib -9 bits of the document (low is suspicious); "
                          f"Min-{k:g}% = mean ln p of the {k:g}% least likely tokens (high is suspicious); "
                          "robust z = (x − median) / (1.4826 · MAD) within the dataset",
            "flagged": top_flagged(rows, n=top, threshold=threshold)}


def group_summary(per_doc: list[dict], groups: list[str] | None) -> dict | None:
    if not groups:
        return None
    rows = [dict(r, group=groups[r["index"]]) for r in per_doc]
    for r, src in zip(rows, per_doc):
        src["group"] = r["group"]
    return group_results(rows)
