"""Command-line shorthands as edits of the raw config dict (before it is validated).

``sweep`` fills in ``eval.temperatures``; ``kl`` keeps just the two models it
names. Both run after the ``key=value`` overrides, so an override may add or
change the models they pick.

Example::

    >>> raw = {"models": [{"name": "fp32", "path": "m"}, {"name": "int8", "path": "m"},
    ...                   {"name": "bf16", "path": "m"}]}
    >>> select_kl_pair(raw, "fp32", "bf16")
    >>> [(m["name"], m.get("compare_to")) for m in raw["models"]]
    [('fp32', None), ('bf16', 'fp32')]
"""

from __future__ import annotations

import os
import re
from typing import Any

from .config import BUILTIN_DATASETS, default_model_name, load_raw
from .errors import UserError, did_you_mean

DEFAULT_TEMPERATURES = "0.2:2.0:0.1"


def sweep_temperatures(raw: Any, spec: str | None) -> None:
    """Set ``eval.temperatures`` from ``--temperatures``; without it keep the config's, else the default grid."""
    from .temperature import parse_temperatures

    if not isinstance(raw, dict):
        return
    ev = raw.setdefault("eval", {})
    if not isinstance(ev, dict):
        return
    if spec is None and ev.get("temperatures"):
        return
    spec = spec or DEFAULT_TEMPERATURES
    try:
        temps = parse_temperatures(spec)
    except ValueError as e:
        raise UserError(f"--temperatures: got {spec!r}, {e}") from None
    ev["temperatures"] = list(temps)


def _name(m: Any) -> str:
    if not isinstance(m, dict):
        return ""
    return str(m.get("name") or default_model_name(m.get("path") or "", m.get("gguf_file")))


def select_kl_pair(raw: Any, reference: str, candidate: str) -> None:
    """Keep only the reference and the candidate (``compare_to: reference``) in ``raw['models']``."""
    models = raw.get("models") if isinstance(raw, dict) else None
    if not isinstance(models, list):
        return  # validation reports the missing models list
    names = [_name(m) for m in models]
    for flag, want in (("--reference", reference), ("--candidate", candidate)):
        if want not in names:
            raise UserError(f"{flag}: got {want!r}, expected a model name of the config {names}"
                            f"{did_you_mean(want, names)}")
    if reference == candidate:
        raise UserError(f"--reference and --candidate are both {reference!r}; name two different models")
    ref, cand = (dict(models[names.index(n)]) for n in (reference, candidate))
    ref.pop("compare_to", None)
    cand["compare_to"] = reference
    raw["models"] = [ref, cand]
    out = raw.get("output")
    if isinstance(out, dict) and out.get("baseline") not in (None, reference, candidate):
        out.pop("baseline")


USAGE = ("run needs a config or --model and --data, e.g. `lm-eval-it run configs/quickstart.yaml` or "
         "`lm-eval-it run --model HuggingFaceTB/SmolLM2-135M --data notes.txt --limit 20`")


def _model_entry(spec: str) -> dict:
    if spec.lower().endswith(".gguf"):
        folder, name = os.path.split(spec)
        return {"path": folder or ".", "gguf_file": name}
    return {"path": spec}


def _data_entry(spec: str) -> dict:
    if os.path.exists(os.path.expanduser(spec)):
        return {"path": spec}
    if spec in BUILTIN_DATASETS:
        return {"builtin": spec}
    if spec.startswith((".", "/", "~")) or re.search(r"\.(txt|raw|md|jsonl|json|parquet|csv|gz)$", spec):
        raise UserError(f"--data: file {spec!r} does not exist")
    return {"hub": spec}


def raw_for_run(args) -> dict:
    """The raw config of ``run``: the file (or stdin), or one built from --model/--data; then the flags."""
    if args.config is None and not args.model:
        raise UserError(USAGE)
    if args.config is not None and (args.model or args.data):
        raise UserError("run: give either a config or --model/--data, not both")
    if args.config is None:
        if not args.data:
            raise UserError(f"run --model needs --data (a file, a hub dataset id or one of {list(BUILTIN_DATASETS)})")
        raw: dict = {"models": [_model_entry(args.model)], "datasets": [_data_entry(args.data)], "eval": {},
                     "output": {"run_name": args.name or default_model_name(**_model_entry(args.model))}}
        for item in args.overrides:
            from .config import apply_override

            apply_override(raw, item)
    else:
        raw = load_raw(args.config, args.overrides)
    if not isinstance(raw, dict):
        return raw
    ev, out = raw.setdefault("eval", {}), raw.setdefault("output", {})
    for key in ("window", "stride"):
        if getattr(args, key) is not None:
            ev[key] = getattr(args, key)
    if args.limit is not None:
        for d in raw.get("datasets") or []:
            if isinstance(d, dict):
                d["limit"] = args.limit
    if args.temperatures is not None:
        sweep_temperatures(raw, args.temperatures)
    if args.name:
        out["run_name"] = args.name
    if args.out:
        out["dir"] = args.out
    return raw


def context_protocol(raw: Any) -> None:
    """``context``: stride = window (every context length from 1 to the window is then observed)."""
    if not isinstance(raw, dict):
        return
    ev = raw.setdefault("eval", {}) if isinstance(raw.get("eval", {}), dict) else raw["eval"]
    if isinstance(ev, dict):
        ev["stride"] = ev.get("window", 1024)
