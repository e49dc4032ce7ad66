"""Do the harness's 95% intervals hold 95%? A seeded simulation over documents (issue #19, items 2-3).

    python benchmarks/coverage.py          # 4000 datasets per case, ~4-5 min on one core → benchmarks/data/coverage.json
    python benchmarks/coverage.py --quick    # 400 per case, prints only (does not write over the recorded figures)

Each simulated dataset is a set of documents with WikiText-like, heavy-tailed lengths:
bytes ~ lognormal(μ 9.518, σ 1.078), the maximum-likelihood fit to the byte lengths of the 62
WikiText-2 (raw) test articles (median 13.2 kB, 117 B to 75 kB; the fit's tail is heavier than
the sample's, so it is the harder test); tokens = bytes / 4.3. Per document:

* difficulty: nats/byte ``r_i = 0.70 − 0.03·(ln bytes_i − 9.518) + 0.12·N(0,1)`` (long documents
  slightly easier; documents differ by ±0.17 bits/byte);
* model A's NLL: ``r_i·bytes_i + 2.5·√tokens_i·N(0,1)`` (per-token noise, 2.5 nats a token);
* model B's NLL: A's ``+ bytes_i·(δ + 0.02·N(0,1)) + 0.8·√tokens_i·N(0,1)``: the models differ by
  document, by ±0.03 bits/byte, around a true Δ of ``δ`` (0 for the false-"significant" rate).

The true bits/byte is the population ratio ``E[nll]/E[bytes]`` (exact for the lognormal:
``(0.70 − 0.03·σ²)/ln 2``). Cases: 5, 10, 12, 20, 50 documents, and grouped datasets of groups
of 3, 3, 3, 2 and 1 documents whose groups differ in length (median ×e^[0, −.7, .5, −.3, .2]) and
difficulty (0.55 … 0.95 nats/byte), with one spread for every group (``grouped``) and with
spreads 0.05 … 0.30 differing by group (``grouped_unequal_spread``), the same without the
one-document group (3, 3, 3, 2), and 30, 2, 2 documents whose two small groups are ten times
noisier than the large one (where a spread pooled over groups failed). A group of one document
has no spread of its own, so the macro figure then has no interval: "coverage" is over the
intervals shown, and "shown" says how often there was one.

Methods: ``old`` is the percentile bootstrap of lm_eval_it ≤ 0.2 (2000 document resamples, seed
1234, stratified by group for micro and macro), reimplemented here as the reference; ``new`` is
the shipped code (:mod:`lm_eval_it.stats.intervals`, :mod:`lm_eval_it.stats.groups`). "significant" applies each
method's own gate (``new``: at least 10 documents, and for macro ``N − G ≥ 9``); "excludes 0" is
the interval alone. ± is the Monte-Carlo 95% half-width; "width new/old" is the ratio of the
median interval widths (the price of holding the level).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lm_eval_it.io import atomic_write_text  # noqa: E402
from lm_eval_it.stats.groups import compare_groups, group_results  # noqa: E402
from lm_eval_it.stats.intervals import paired_delta, ratio_interval  # noqa: E402
from lm_eval_it.stats.temperature.calibration import resample_weights  # noqa: E402 - the old method's document bootstrap

LN2 = math.log(2.0)
LOG_MU, LOG_SIGMA = 9.518, 1.078
MU_R, SLOPE, SD_R, SD_TOKEN = 0.70, -0.03, 0.12, 2.5
SD_MODEL, SD_MODEL_TOKEN, ALT_DELTA = 0.02, 0.8, 0.02
GROUP_SIZES = (3, 3, 3, 2, 1)
GROUP_LOG_OFFSET = (0.0, -0.7, 0.5, -0.3, 0.2)
GROUP_MU = (0.55, 0.65, 0.75, 0.85, 0.95)
GROUP_SD_UNEQUAL = (0.05, 0.10, 0.20, 0.30, 0.15)
DOC_COUNTS = (5, 10, 12, 20, 50)
OLD_RESAMPLES, OLD_SEED, OLD_MIN_DOCS = 2000, 1234, 10


# ----------------------------------------------------------------------------- simulation

def documents(rng, n: int, log_offset: float = 0.0, mu: float = MU_R, slope: float = SLOPE, sd: float = SD_R):
    """One dataset: bytes, tokens, NLL of A, NLL of B under the null, NLL of B under Δ = ALT_DELTA."""
    nbytes = np.maximum(1.0, np.round(rng.lognormal(LOG_MU + log_offset, LOG_SIGMA, n)))
    tokens = np.maximum(1.0, np.round(nbytes / 4.3))
    r = mu + slope * (np.log(nbytes) - LOG_MU - log_offset) + sd * rng.standard_normal(n)
    a = r * nbytes + SD_TOKEN * np.sqrt(tokens) * rng.standard_normal(n)
    diff = nbytes * SD_MODEL * rng.standard_normal(n) + SD_MODEL_TOKEN * np.sqrt(tokens) * rng.standard_normal(n)
    return nbytes, tokens, a, a + diff, a + diff + ALT_DELTA * nbytes


def true_ratio(mu: float, slope: float = SLOPE) -> float:
    """E[r·bytes]/E[bytes] in bits/byte: the size-biased lognormal has E[ln bytes] = μ + σ²."""
    return (mu + slope * LOG_SIGMA ** 2) / LN2


def grouped_documents(rng, sds, sizes=GROUP_SIZES):
    parts = [documents(rng, n, off, mu, 0.0, sd)
             for n, off, mu, sd in zip(sizes, GROUP_LOG_OFFSET, GROUP_MU, sds)]
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    return labels, [np.concatenate(cols) for cols in zip(*parts)]


def grouped_truth(sizes=GROUP_SIZES) -> dict:
    mean_bytes = [n * math.exp(LOG_MU + off + LOG_SIGMA ** 2 / 2) for n, off in zip(sizes, GROUP_LOG_OFFSET)]
    micro = sum(m * mu for m, mu in zip(mean_bytes, GROUP_MU)) / sum(mean_bytes) / LN2
    mus = GROUP_MU[:len(sizes)]
    return {"micro": micro, "macro": sum(mus) / len(mus) / LN2}


# ----------------------------------------------------------------------------- old method (reference)

def old_quantiles(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.quantile(samples, [0.025, 0.975], axis=0)
    return lo, hi


def old_ungrouped(nbytes, a, b0, b1):
    """Today's percentile bootstrap, vectorised over datasets (rows): bpb and paired Δ intervals."""
    w = resample_weights(nbytes.shape[1], OLD_RESAMPLES, OLD_SEED)  # one fixed seed, as in the old code
    wb = w @ nbytes.T
    bpb = old_quantiles((w @ a.T) / wb / LN2)
    null = old_quantiles((w @ (a - b0).T) / wb / LN2)
    alt = old_quantiles((w @ (b1 - a).T) / wb / LN2)
    return bpb, null, alt


def old_grouped(labels, nbytes, a, b0, b1):
    """Today's stratified bootstrap (group i uses seed 1234 + i): micro/macro bpb and Δ intervals."""
    ws = [resample_weights(int((labels == g).sum()), OLD_RESAMPLES, OLD_SEED + g) for g in range(int(labels.max()) + 1)]

    def sums(v):  # (groups, resamples, datasets)
        return np.stack([w @ v[:, labels == g].T for g, w in enumerate(ws)])

    nb, na, n0, n1 = sums(nbytes), sums(a), sums(b0), sums(b1)
    out = {"micro_bpb": na.sum(0) / nb.sum(0), "macro_bpb": (na / nb).mean(0),
           "micro_null": (na - n0).sum(0) / nb.sum(0), "macro_null": ((na - n0) / nb).mean(0),
           "micro_alt": (n1 - na).sum(0) / nb.sum(0), "macro_alt": ((n1 - na) / nb).mean(0)}
    return {k: old_quantiles(v / LN2) for k, v in out.items()}


# ----------------------------------------------------------------------------- tallies

class Tally:
    """Counts of 'interval holds the truth' and 'significant' per quantity and method."""

    def __init__(self):
        self.hits: dict = {}
        self.widths: dict = {}

    def add(self, key, value: bool | None) -> None:
        h = self.hits.setdefault(key, [0, 0])
        h[0] += bool(value)
        h[1] += 1

    def add_interval(self, method, quantity, lo, hi, truth, gate_ok: bool, null: bool) -> None:
        ok = lo is not None and np.isfinite(lo) and np.isfinite(hi)
        if null:
            excl = ok and (lo > 0 or hi < 0)
            self.add((method, quantity, "excludes_0"), excl)
            self.add((method, quantity, "significant"), excl and gate_ok)
        else:   # coverage among the intervals shown; "shown": how often there is one at all
            self.add((method, quantity, "shown"), ok)
            if ok:
                self.add((method, quantity, "coverage"), lo <= truth <= hi)
                self.widths.setdefault((method, quantity), []).append(hi - lo)

    def rows(self, case: str, docs: int) -> list[dict]:
        out = []
        for (method, quantity, what), (k, n) in sorted(self.hits.items()):
            p = k / n
            out.append({"case": case, "documents": docs, "method": method, "quantity": quantity, "measure": what,
                        "rate": p, "mc_half_width": 1.96 * math.sqrt(max(p * (1 - p), 1.0 / n) / n), "datasets": n})
            if what == "coverage":
                out[-1]["median_width"] = float(np.median(self.widths[(method, quantity)]))
        return out


def run_ungrouped(rng, n: int, reps: int) -> list[dict]:
    sims = [documents(rng, n) for _ in range(reps)]
    nbytes, _, a, b0, b1 = (np.stack(c) for c in zip(*sims))
    t, truth = Tally(), true_ratio(MU_R)
    (blo, bhi), (nlo, nhi), (alo, ahi) = old_ungrouped(nbytes, a, b0, b1)
    for k in range(reps):
        t.add_interval("old", "bits_per_byte", blo[k], bhi[k], truth, True, False)
        t.add_interval("old", "paired_delta", alo[k], ahi[k], ALT_DELTA / LN2, True, False)
        t.add_interval("old", "paired_delta", nlo[k], nhi[k], 0.0, n >= OLD_MIN_DOCS, True)
        iv = ratio_interval(a[k], nbytes[k])
        t.add_interval("new", "bits_per_byte", iv[0] / LN2, iv[1] / LN2, truth, True, False)
        d1 = paired_delta(b1[k], nbytes[k], a[k], nbytes[k])
        t.add_interval("new", "paired_delta", d1["low"], d1["high"], ALT_DELTA / LN2, True, False)
        d0 = paired_delta(a[k], nbytes[k], b0[k], nbytes[k])
        t.add_interval("new", "paired_delta", d0["low"], d0["high"], 0.0, not d0["few_documents"], True)
    return t.rows(f"{n} documents", n)


def _rows(labels, nbytes, tokens, nll):
    return [dict(group=f"g{g}", nll=float(v), tokens=int(t), bytes=int(b), words=1, chars=int(b))
            for g, t, b, v in zip(labels, tokens, nbytes, nll)]


def run_grouped(rng, reps: int, sds, case: str, sizes=GROUP_SIZES) -> list[dict]:
    sims = [grouped_documents(rng, sds, sizes) for _ in range(reps)]
    labels = sims[0][0]
    nbytes, tokens, a, b0, b1 = (np.stack([s[1][i] for s in sims]) for i in range(5))
    t, truth, n = Tally(), grouped_truth(sizes), len(labels)
    old = old_grouped(labels, nbytes, a, b0, b1)
    for k in range(reps):
        for kind in ("micro", "macro"):
            lo, hi = old[f"{kind}_bpb"]
            t.add_interval("old", f"{kind}_bits_per_byte", lo[k], hi[k], truth[kind], True, False)
            lo, hi = old[f"{kind}_alt"]
            t.add_interval("old", f"{kind}_delta", lo[k], hi[k], ALT_DELTA / LN2, True, False)
            lo, hi = old[f"{kind}_null"]
            t.add_interval("old", f"{kind}_delta", lo[k], hi[k], 0.0, n >= OLD_MIN_DOCS, True)
        ra, rb0, rb1 = (_rows(labels, nbytes[k], tokens[k], v[k]) for v in (a, b0, b1))
        g = group_results(ra)
        c0, c1 = compare_groups(ra, rb0), compare_groups(rb1, ra)
        for kind in ("micro", "macro"):
            iv = g[kind]["bits_per_byte_interval"] or (None, None)
            t.add_interval("new", f"{kind}_bits_per_byte", iv[0], iv[1], truth[kind], True, False)
            t.add_interval("new", f"{kind}_delta", c1[kind]["low"], c1[kind]["high"], ALT_DELTA / LN2, True, False)
            t.add_interval("new", f"{kind}_delta", c0[kind]["low"], c0[kind]["high"], 0.0,
                           not c0[kind]["few_documents"], True)
    return t.rows(case, n)


# ----------------------------------------------------------------------------- output

def markdown(rows: list[dict]) -> str:
    """One line per case × quantity: old and new side by side."""
    key = {}
    for r in rows:
        key.setdefault((r["case"], r["quantity"]), {})[(r["method"], r["measure"])] = r
    head = ("| case | quantity | coverage old | coverage new | excludes 0 old | excludes 0 new "
            "| significant old | significant new | width new/old |")
    out = [head, "|" + "---|" * 9]
    for (case, quantity), m in key.items():
        cells = []
        for measure in ("coverage", "excludes_0", "significant"):
            for method in ("old", "new"):
                r = m.get((method, measure))
                cells.append("– (none shown)" if r is None and measure == "coverage"
                             else "" if r is None else f"{100 * r['rate']:.1f}% ± {100 * r['mc_half_width']:.1f}")
        widths = [m.get((method, "coverage"), {}).get("median_width") for method in ("old", "new")]
        cells.append("–" if None in widths else f"{widths[1] / widths[0]:.2f}")
        out.append(f"| {case} | {quantity} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="400 datasets per case; print only")
    ap.add_argument("--reps", type=int, default=None, help="datasets per case (default 4000, --quick 400)")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/data/coverage.json; none with --quick)")
    args = ap.parse_args(argv)
    reps = args.reps or (400 if args.quick else 4000)
    rng = np.random.default_rng(args.seed)
    t0, rows = time.perf_counter(), []
    for n in DOC_COUNTS:
        rows += run_ungrouped(rng, n, reps)
    rows += run_grouped(rng, reps, [SD_R] * len(GROUP_SIZES), "grouped 3,3,3,2,1")
    rows += run_grouped(rng, reps, GROUP_SD_UNEQUAL, "grouped 3,3,3,2,1, unequal spread")
    rows += run_grouped(rng, reps, GROUP_SD_UNEQUAL[:4], "grouped 3,3,3,2, unequal spread", (3, 3, 3, 2))
    rows += run_grouped(rng, reps, (0.03, 0.30, 0.30), "grouped 30,2,2, small groups noisy", (30, 2, 2))
    table = markdown(rows)
    print(table)
    seconds = time.perf_counter() - t0
    print(f"\n{reps} datasets per case, seed {args.seed}, {seconds:.0f} s")
    out = args.out or (None if args.quick else str(ROOT / "benchmarks" / "data" / "coverage.json"))
    if out:
        doc = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "datasets_per_case": reps, "seed": args.seed, "seconds": seconds, "level": 0.95,
               "model": __doc__.split("\n\n")[2], "rows": rows, "markdown": table}
        atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
