"""Write a small two-domain corpus for the per-group tables: results/domains.jsonl.

Rows ``{"text": ..., "source": ...}``: the 4 shortest of the first 12 WikiText-2 test
articles (``source: wikipedia``, from ``../shared``, byte for byte, in their order)
and the first 4 Python documentation topics that every Python carries (``source:
python-docs``). Nothing is copied into
the repository: the file is written under ``results/`` (not tracked).

    python benchmarks/make_domains.py [--out results/domains.jsonl]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIKITEXT = REPO.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
HEADING = re.compile(r"^ = [^=].* = \r?$", re.MULTILINE)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "results" / "domains.jsonl"))
    ap.add_argument("--per-domain", type=int, default=4)
    args = ap.parse_args()
    text = WIKITEXT.read_bytes().decode("utf-8")
    starts = [m.start() for m in HEADING.finditer(text)]
    first = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])][:12]
    keep = sorted(sorted(range(len(first)), key=lambda i: len(first[i]))[: args.per_domain])
    articles = [first[i] for i in keep]
    from pydoc_data.topics import topics

    docs = [topics[k] for k in sorted(topics)][: args.per_domain]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"text": t, "source": "wikipedia"} for t in articles] + [{"text": t, "source": "python-docs"} for t in docs]
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    print(f"{out}: {len(rows)} documents in 2 domains")


if __name__ == "__main__":
    main()
