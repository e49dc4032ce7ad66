"""Diff two results.json recursively: what a change removed, changed or added (timestamps, timings, paths ignored).

    python benchmarks/results_diff.py OLD/results.json NEW/results.json [--ignore 'glob.of.key.path' ...]

Numbers are compared exactly (no tolerance). Key paths are dotted, list items by index
(``results[1].per_document[3].nll``); ``--ignore`` takes fnmatch globs over them with indices written as
keys (``results.*.timing``), beside the defaults below. The per-document NLLs are checked bit for bit and counted. Exit status 1 when anything was
removed or changed (``schema`` aside), else 0; additions are listed, not failures.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from fnmatch import fnmatchcase
from pathlib import Path

IGNORE = ("created", "wall_seconds", "provenance.git_commit", "provenance.torch_threads",
          "config.output.dir", "raw_config.output.dir", "models.*.load_seconds", "results.*.timing",
          "comparison.*.rows.*.tokens_per_second", "schema")


def walk(old, new, path: str, out: dict) -> None:
    """Fill ``out['removed'|'changed'|'added']`` with the key paths where ``new`` differs from ``old``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            sub = f"{path}.{k}" if path else k
            if k not in new:
                out["removed"].append(sub)
            else:
                walk(old[k], new[k], sub, out)
        out["added"] += [f"{path}.{k}" if path else k for k in new if k not in old]
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            out["changed"].append(f"{path} (length {len(old)} → {len(new)})")
        for i, (a, b) in enumerate(zip(old, new)):
            walk(a, b, f"{path}[{i}]", out)
    elif type(old) is not type(new) or old != new:
        out["changed"].append(f"{path}: {old!r} → {new!r}")


def per_document_nlls(old: dict, new: dict) -> tuple[int, int]:
    """(documents compared, documents whose NLL differs in any bit), over every results row."""
    same = differ = 0
    for a, b in zip(old.get("results", []), new.get("results", [])):
        for da, db in zip(a.get("per_document", []), b.get("per_document", [])):
            if float(da["nll"]).hex() == float(db["nll"]).hex():
                same += 1
            else:
                differ += 1
    return same + differ, differ


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--ignore", action="append", default=[], help="a glob over dotted key paths to skip")
    args = ap.parse_args(argv)
    old, new = (json.loads(p.read_text()) for p in (args.old, args.new))
    out: dict[str, list[str]] = {"removed": [], "changed": [], "added": []}
    walk(old, new, "", out)
    globs = (*IGNORE, *args.ignore)

    def kept(entry: str) -> bool:
        key = re.sub(r"\[(\d+)\]", r".\1", entry.split(" ")[0].rstrip(":"))
        return not any(fnmatchcase(key, g) or fnmatchcase(key, g + ".*") for g in globs)

    print(f"schema: {old.get('schema')} → {new.get('schema')}")
    for kind in ("removed", "changed", "added"):
        shown = [e for e in out[kind] if kept(e)]
        print(f"{kind}: {len(shown)}")
        for e in shown[:50]:
            print(f"  {e}")
        if len(shown) > 50:
            print(f"  … and {len(shown) - 50} more")
    n, differ = per_document_nlls(old, new)
    print(f"per-document NLLs: {n - differ} of {n} bit-identical")
    bad = [e for kind in ("removed", "changed") for e in out[kind] if kept(e)]
    return 1 if bad or differ else 0


if __name__ == "__main__":
    sys.exit(main())
