"""Comparing across runs: find a run's results, read its rows, and say what protocol each was scored under.

The **protocol** is what defines the measurement, and only runs that share it pair: the data (the
dataset fingerprint, checked by :func:`lm_eval_it.report.compare.build.build_comparison`), the window, the stride,
the prefix and the window's unit. A model's dtype, quantisation and backend are properties of the
model, not of the protocol: :func:`model_facts` reads them from the run's ``models[]`` so that the
comparison table can show them beside each model.

Example::

    rows = rows_from_runs(["results/runA", "runB"])      # run folders, or run names under results/
    protocol_text(rows[0]["protocol"])                  # 'window 1024 tokens, stride 512, prefix bos'
    rows[0]["model_facts"]                              # {'dtype': 'bfloat16', 'backend': None, 'gguf_file': None}
"""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval_it.errors import UserError, did_you_mean


def _newest_complete(folder: Path) -> Path | None:
    def key(p: Path):
        stamp, _, n = p.parent.name.partition("-")
        return stamp, int(n) if n.isdigit() else 0

    for f in sorted(folder.glob("*/results.json"), key=key, reverse=True):
        try:
            if json.loads(f.read_text()).get("complete"):
                return f
        except (OSError, ValueError):
            continue
    return None


def find_results(path: str | Path, base: str | Path = "results") -> Path:
    """``results.json`` of a run folder, or of the newest complete run of a run name (a folder, or a name under ``base``)."""
    p = Path(path)
    if not p.exists() and (Path(base) / p).exists():
        p = Path(base) / p
    if (p / "results.json").is_file():
        return p / "results.json"
    if p.is_dir():
        found = _newest_complete(p)
        if found is not None:
            return found
        raise UserError(f"{str(p)!r} holds no complete run (expected results/<run>/<timestamp>/results.json)")
    names = sorted(d.name for d in Path(base).iterdir() if d.is_dir()) if Path(base).is_dir() else []
    raise UserError(f"{str(path)!r} is neither a run folder nor a run name under {str(base)!r} "
                    f"(run names there: {', '.join(names) or 'none'}){did_you_mean(str(path), names)}")


def run_protocol(row: dict) -> dict:
    """What a row's numbers depend on besides the model and the text: window, stride, prefix and window unit.

    With ``window_unit: bytes`` the configured window and stride (in bytes) are the protocol; the token
    window each model ran is converted from them at its own bytes per token."""
    ev = row.get("eval") or {}
    unit = ev.get("window_unit", "tokens")
    in_bytes = unit == "bytes" and ev.get("configured_window") is not None
    out = {"window": ev.get("configured_window") if in_bytes else ev.get("window"),
           "stride": ev.get("configured_stride") if in_bytes else ev.get("stride"),
           "prefix": str(ev.get("prefix", "")).split(":")[0], "window_unit": unit}
    if ev.get("protocol", "strided") != "strided":  # llama-perplexity: its chunk limit is part of it too
        out.update(protocol=ev["protocol"], chunks=ev.get("chunks"))
    return out


def protocol_text(proto: dict) -> str:
    text = f"window {proto['window']} {proto['window_unit']}, stride {proto['stride']}, prefix {proto['prefix']}"
    if "protocol" in proto:
        text += f", {proto['protocol']} ({proto['chunks'] or 'all'} chunks)"
    return text


def model_facts(models: list[dict] | None, name: str) -> dict:
    """A model's dtype (e.g. ``bfloat16``, ``int8-dynamic(float32)``), backend and GGUF file, from ``models[]``
    of its results.json; ``None`` for what the run did not record."""
    m = next((m for m in models or [] if m.get("name") == name), {})
    return {"dtype": m.get("dtype"), "backend": m.get("backend"), "gguf_file": (m.get("source") or {}).get("gguf_file")}


def rows_from_runs(paths: list[str], base: str | Path = "results") -> list[dict]:
    """All result rows of several runs, each with its ``run`` label, ``protocol``, ``model_facts`` and ``run_folder``
    (where its views file is).

    Model names that collide get the run label appended.
    """
    loaded = []
    for path in paths:
        f = find_results(path, base)
        data = json.loads(f.read_text())
        if not data.get("complete"):
            raise UserError(f"{f} is not a complete run; finish or resume it before comparing")
        label = f"{data['run_name']}/{f.parent.name}"
        rows = [dict(r, run=label, protocol=run_protocol(r), model_facts=model_facts(data.get("models"), r["model"]),
                     run_folder=str(f.parent)) for r in data["results"]]
        loaded.append((label, rows))
    counts: dict[tuple, int] = {}
    for _, rows in loaded:
        for r in rows:
            counts[(r["model"], r["dataset"])] = counts.get((r["model"], r["dataset"]), 0) + 1
    out = []
    for label, rows in loaded:
        for r in rows:
            if counts[(r["model"], r["dataset"])] > 1:
                r["model"] = f"{r['model']} @ {label}"
            out.append(r)
    return out
