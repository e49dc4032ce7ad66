"""Memorisation signals as a plug-in: Min-K% prob per document, zlib ratio, robust z-scores, flagged documents.

Its statistic (:class:`lm_eval_it.stats.memorisation.statistic.MinKProb`) keeps one number per
document; its block (``memorisation``) is :func:`lm_eval_it.stats.insights.memorisation_summary`;
its report lists the flagged documents (:func:`memorisation_table`).

Example::

    >>> row = {"model": "m", "dataset": "d", "metrics": {"docs": 3}, "memorisation": {"flagged": []}}
    >>> memorisation_line(row)
    'm · d: 0 of 3 documents flagged'
"""

from __future__ import annotations

from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.base import Plugin, Scored, Setup
from lm_eval_it.stats.insights import memorisation_summary
from lm_eval_it.stats.memorisation.statistic import MinKProb
from lm_eval_it.stats.tables import by_dataset, md_table


def _groups_of(row: dict) -> dict:
    return {d["index"]: d.get("group") for d in row.get("per_document") or [] if "index" in d}


def memorisation_table(row: dict, excerpt: int = 200) -> dict:
    m, groups = row["memorisation"], _groups_of(row)
    grouped = any(g is not None for g in groups.values())
    out = []
    for f in m.get("flagged") or []:
        text = f.get("excerpt", "")
        text = text if len(text) <= excerpt else text[: excerpt - 1] + "…"
        out.append([str(f["doc"])] + ([str(groups.get(f.get("doc")))] if grouped else [])
                   + [", ".join(f["flags"]), _f(f.get("zlib_ratio"), ".3f"), _f(f.get("z_zlib_ratio"), "+.2f"),
                      _f(f.get("min_k"), ".3f"), _f(f.get("z_min_k"), "+.2f"), {"value": text, "wrap": True}])
    k = m.get("k_percent", 20)
    return {"headers": ["doc"] + (["group"] if grouped else []) + ["flagged by", "zlib ratio", "z", f"Min-{k:g}% ln p",
                                                                    "z", "excerpt"],
            "rows": out, "left": 3 if grouped else 2, "text": [7 if grouped else 6]}


def memorisation_note(row: dict) -> str:
    m = row["memorisation"]
    n = len(m.get("flagged") or [])
    head = (f"{n} document{'s' if n != 1 else ''} flagged" if n else "No document flagged")
    return (f"{head} (robust z ≥ {m.get('threshold_z', 3.5):g} in the suspicious direction; most flagged first). "
            f"{m.get('definition', '')}.")


def memorisation_line(row: dict) -> str:
    m = row["memorisation"]
    fl = m.get("flagged") or []
    line = f"{row['model']} · {row['dataset']}: {len(fl)} of {row['metrics'].get('docs', '?')} documents flagged"
    if fl:
        top, text = fl[0], " ".join(fl[0].get("excerpt", "").split())
        line += (f"; most: doc {top['doc']} ({', '.join(top['flags'])}, z {top['score']:+.1f}) "
                 f"{(text[:57] + '…') if len(text) > 58 else text!r}")
    return line


class MemorisationPlugin(Plugin):
    """Always on (``eval.min_k``): a document's Min-K% is kept as it completes, its zlib size comes from prepare."""

    name, keys, config_keys = "min_k", ("memorisation",), ("min_k",)
    order = {"markdown": 30, "html": 30, "terminal": 30}

    def __init__(self, k: float):
        self.k = k
        self.statistic = MinKProb(k)

    @classmethod
    def build(cls, setup: Setup) -> "MemorisationPlugin":
        return cls(setup.eval.min_k)

    def block(self, scored: Scored) -> dict:
        return {"memorisation": memorisation_summary(scored.per_document, scored.zlib_bits, scored.heads, self.k)}

    @classmethod
    def markdown(cls, rows: list[dict], terminal: bool = False) -> str:
        mem = [r for r in rows if r.get("memorisation")]
        if not mem:
            return ""
        out = ["## Memorisation signals", ""]
        if terminal:
            out += [memorisation_line(r) for r in mem] + [""]
        else:
            for r in mem:
                out += [f"### {r['model']} · {r['dataset']}", "", memorisation_note(r), ""]
                if r["memorisation"].get("flagged"):
                    out += [md_table(memorisation_table(r, excerpt=80)), ""]
        return "\n".join(out)

    @classmethod
    def terminal(cls, rows: list[dict]) -> str:
        return cls.markdown(rows, terminal=True)

    @classmethod
    def html(cls, results: dict) -> list:
        out = []
        for name, grp in by_dataset(results["results"], "memorisation").items():
            blocks = []
            for r in grp:
                blocks += [{"h3": r["model"]}, {"note": memorisation_note(r)}]
                if r["memorisation"].get("flagged"):
                    blocks.append({"table": memorisation_table(r)})
            out.append((f"Memorisation signals · {name}", blocks))
        return out
