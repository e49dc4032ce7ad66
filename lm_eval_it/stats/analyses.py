"""Dataset analyses of per-document results as plug-ins: compression baselines and groups.

Neither reads a token: compression compares the model's bits per byte with general-purpose
compressors on the same bytes (:func:`lm_eval_it.stats.insights.compression_summary`); groups
split the per-document rows by their group label (:func:`lm_eval_it.stats.insights.group_summary`)
and, in a comparison, pair each group's documents with the baseline's (:func:`group_delta`).

Example::

    >>> row = {"model": "m", "dataset": "d", "metrics": {"bits_per_byte": 1.0}, "compression": {
    ...     "compressors": {"gzip": {"bits_per_byte": 2.5}, "xz": {"bits_per_byte": 2.0}}, "best": "xz",
    ...     "best_bits_per_byte": 2.0, "model_to_best_ratio": 0.5, "definition": "bits out / bytes in"}}
    >>> print(md_table(compression_table([row])).splitlines()[2])
    | m | d | 1.0000 | 2.5000 | 2.0000 | xz | 0.500 |
"""

from __future__ import annotations

from lm_eval_it.numfmt import num as _f
from lm_eval_it.stats.base import Plugin, Scored
from lm_eval_it.stats.groups import compare_groups
from lm_eval_it.stats.insights import compression_summary, group_summary
from lm_eval_it.stats.tables import by_dataset, cell, md_table


def compression_table(rows: list[dict]) -> dict:
    rows = [r for r in rows if r.get("compression")]
    names = list(dict.fromkeys(n for r in rows for n in r["compression"]["compressors"]))
    out = [[r["model"], r["dataset"], _f(r["metrics"]["bits_per_byte"])]
           + [_f(r["compression"]["compressors"].get(n, {}).get("bits_per_byte")) for n in names]
           + [r["compression"].get("best") or "–", _f(r["compression"].get("model_to_best_ratio"), ".3f")]
           for r in rows]
    return {"headers": ["model", "dataset", "model bits/byte"] + [f"{n} bits/byte" for n in names]
            + ["best compressor", "model ÷ best"], "rows": out, "left": 2, "text": [3 + len(names)]}


def compression_note(rows: list[dict]) -> str:
    d = next((r["compression"].get("definition") for r in rows if r.get("compression")), None)
    return (f"Compressor bits/byte: {d}. model ÷ best below 1 means the model codes this text in fewer bits than "
            "the best general-purpose compressor.") if d else ""


def group_table(rows: list[dict]) -> dict:
    """One dataset's rows: per group docs, bytes and each model's bits/byte; micro and macro at the end.

    Groups sorted by the first model's bits/byte."""
    first = rows[0]["groups"]
    order = sorted(first["groups"], key=lambda g: first["groups"][g]["bits_per_byte"])
    def one(r, g):
        s = r["groups"]["groups"].get(g)
        return cell(s["bits_per_byte"], s["intervals"].get("bits_per_byte")) if s else "–"

    out = [[g, str(first["groups"][g]["docs"]), str(first["groups"][g]["bytes"])] + [one(r, g) for r in rows]
           for g in order]
    out.append(["micro (all bytes)", str(first["micro"]["docs"]), str(first["micro"]["bytes"])]
               + [cell(r["groups"]["micro"]["bits_per_byte"], r["groups"]["micro"]["bits_per_byte_interval"])
                  for r in rows])
    out.append([f"macro (mean of {first['macro']['groups']} groups)", "", ""]
               + [cell(r["groups"]["macro"]["bits_per_byte"], r["groups"]["macro"]["bits_per_byte_interval"])
                  for r in rows])
    return {"headers": ["group", "docs", "bytes"] + [f"{r['model']} bits/byte" for r in rows], "rows": out}


GROUP_NOTE = ("micro: all NLL over all bytes (large groups weigh more): the dataset's bits/byte, with the dataset's "
              "interval; macro: mean of the groups' bits/byte (each group weighs the same). Intervals: 95% Student-t "
              "over documents (linearised variance): a group's from its own documents, the macro's from each "
              "group's own spread (conservative Welch df). A group with fewer than 2 scored documents is too small "
              "for a variance of its own (no interval in its row), and the macro figure then has none either.")


def group_delta(row: dict, base: dict) -> dict | None:
    """Per-group Δ bits/byte of ``row`` against ``base`` on the documents both scored (paired by index)."""
    if row is base or not row.get("groups") or not base.get("groups"):
        return None
    a = {d["index"]: d for d in row["per_document"] if d.get("group") is not None}
    b = {d["index"]: d for d in base["per_document"] if d.get("group") is not None}
    common = sorted(set(a) & set(b))
    if not common:
        return None
    out = compare_groups([a[i] for i in common], [b[i] for i in common])
    for g in out["groups"]:
        g["bits_per_byte"] = row["groups"]["groups"][g["group"]]["bits_per_byte"]
        g["baseline_bits_per_byte"] = base["groups"]["groups"][g["group"]]["bits_per_byte"]
    return out


class CompressionPlugin(Plugin):
    """On when prepare measured compressors (``eval.compressors``; zstd only where installed)."""

    name, keys, config_keys = "compression", ("compression",), ("compressors",)
    order = {"markdown": 20, "html": 20, "terminal": 20}

    def block(self, scored: Scored) -> dict:
        return {"compression": compression_summary(scored.compression, scored.metrics["bits_per_byte"])}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        if not any(r.get("compression") for r in rows):
            return ""
        return "\n".join(["## Compression baselines", "", md_table(compression_table(rows)), "",
                          compression_note(rows), ""])

    terminal = markdown

    @classmethod
    def html(cls, results: dict) -> list:
        rows = results["results"]
        if not any(r.get("compression") for r in rows):
            return []
        return [("Compression baselines", [{"table": compression_table(rows)}, {"note": compression_note(rows)}])]

    @classmethod
    def compare(cls, row: dict, base: dict) -> dict:
        comp = row.get("compression") or {}
        return {"compression_ratio": comp.get("model_to_best_ratio"), "best_compressor": comp.get("best")}


class GroupsPlugin(Plugin):
    """On for a dataset with ``group_by``: per-group metrics, micro and macro bits per byte."""

    name, keys = "groups", ("groups",)
    order = {"markdown": 40, "html": 40, "terminal": 40}

    def block(self, scored: Scored) -> dict:
        return {"groups": group_summary(scored.per_document, scored.groups)}

    @classmethod
    def markdown(cls, rows: list[dict]) -> str:
        out = []
        for name, grp in by_dataset(rows, "groups").items():
            out += [f"## Groups · {name}", "", md_table(group_table(grp)), "", GROUP_NOTE, ""]
        return "\n".join(out)

    terminal = markdown

    @classmethod
    def html(cls, results: dict) -> list:
        out = []
        for name, grp in by_dataset(results["results"], "groups").items():
            table = next((t for t in results.get("comparison") or [] if t["dataset"] == name), None)
            alt = ("Δ bits/byte per group against " + table["baseline"] if table and len(grp) > 1
                   else "bits/byte per group") + f" · {name}"
            out.append((f"Groups · {name}", [{"table": group_table(grp)}, {"note": GROUP_NOTE},
                                              {"plot": "groups", "args": [grp, table], "alt": alt}]))
        return out

    @classmethod
    def compare(cls, row: dict, base: dict) -> dict:
        return {"groups": group_delta(row, base)}
