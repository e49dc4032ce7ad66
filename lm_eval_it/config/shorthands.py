"""Command-line shorthands as edits of the raw config dict (before it is validated).

``--model``/``--data`` build a one-model, one-dataset config (for ``kl``,
``--reference``/``--candidate`` name variants of ``--model`` such as ``fp32``
and ``int8``, or two models). The key flags (:data:`KEY_FLAGS`: ``--device``,
``--dtype``, ``--batch-size``, ``--backend``, ``--window`` ...) set config keys
after the ``key=value`` overrides; :func:`command_line_origins` records which
key each one set, so a validation error names the flag or override, not the
file. ``sweep`` fills in ``eval.temperatures``; ``kl`` keeps just the two
models it names. Both run after the overrides, so an override may add or
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
from typing import Any

from lm_eval_it.config.load import apply_override, load_raw, override_origins
from lm_eval_it.config.named import builtin_typo
from lm_eval_it.config.schema import (
    BUILTIN_DATASETS,
    FORMAT_BY_SUFFIX,
    default_model_name,
)
from lm_eval_it.config.temperatures import parse_temperatures
from lm_eval_it.errors import UserError, did_you_mean

DEFAULT_TEMPERATURES = "0.2:2.0:0.1"


def sweep_temperatures(raw: Any, spec: str | None) -> None:
    """Set ``eval.temperatures`` from ``--temperatures``; without it keep the config's, else the default grid."""
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


def _count(text: str) -> int | str:
    """``--batch-size``: a number, or a word such as ``auto`` (validated with the config)."""
    return int(text) if text.strip().isdigit() else text


# flag, the config key it sets ("*": every model's or every dataset's), type, help
KEY_FLAGS = [
    ("--limit", "datasets.*.limit", int, "score the first N documents of each dataset"),
    ("--window", "eval.window", int, "tokens of context per forward pass"),
    ("--stride", "eval.stride", int, "tokens scored per window"),
    ("--device", "eval.device", str, "auto, cpu, cuda, cuda:N or mps"),
    ("--batch-size", "eval.batch_size", _count, "windows per forward pass, or auto"),
    ("--dtype", "models.*.dtype", str, "every model's dtype: auto, float32, bfloat16 or float16 "
                                       "(or fp32, bf16, fp16)"),
    ("--backend", "models.*.backend", str, "every model's backend: hf (transformers), llama.cpp or openai (a server)"),
    ("--base-url", "models.*.openai.base_url", str, "backend openai: the server's base URL, e.g. "
                                                     "http://127.0.0.1:8000/v1"),
    ("--served-model", "models.*.openai.model", str, "backend openai: the served model's name (default: the first "
                                                     "the server lists)"),
    ("--protocol", "eval.protocol", str, "strided (default) or llama-perplexity"),
    ("--chunks", "eval.chunks", int, "protocol llama-perplexity: at most this many chunks"),
    ("--name", "output.run_name", str, "run name"),
    ("--out", "output.dir", str, "results folder (default results)"),
]
VARIANTS = {"fp32": {"dtype": "float32"}, "float32": {"dtype": "float32"}, "bf16": {"dtype": "bfloat16"},
            "bfloat16": {"dtype": "bfloat16"}, "fp16": {"dtype": "float16"}, "float16": {"dtype": "float16"},
            "int8": {"dtype": "float32", "quantize": "int8"}}


def add_flags(p, command: str) -> None:
    """The flags every config command takes: --model/--data instead of a config, then the key flags."""
    if command == "kl":
        p.add_argument("--model", help="without a config: the model whose variants --reference and --candidate "
                       f"name ({', '.join(VARIANTS)})")
    else:
        p.add_argument("--model", help="without a config: a hub id, a local model folder or a .gguf file")
    p.add_argument("--data", help="without a config: a local file, a hub dataset id or a builtin name")
    for flag, key, kind, text in KEY_FLAGS:
        if not (command == "context" and flag == "--stride"):  # context sets stride = window
            p.add_argument(flag, type=kind, help=f"{text} ({key.replace('*', 'N')})")
    p.add_argument("--json", action="store_true", help="print results.json to stdout (everything else to stderr)")
    p.add_argument("--details", action="store_true", help="also print every metric and the context-length, "
                   "compression, memorisation, group, comparison, sweep and KL tables")


def _usage(command: str) -> str:
    if command == "kl":
        return ("kl needs a config, or --data and --reference/--candidate, e.g. `lm-eval-it kl configs/kl_smollm2.yaml "
                "--reference fp32 --candidate bf16` or `lm-eval-it kl --model HuggingFaceTB/SmolLM2-135M "
                "--data pydoc_topics --reference fp32 --candidate int8`")
    return (f"{command} needs a config or --model and --data, e.g. `lm-eval-it {command} configs/quickstart.yaml` or "
            f"`lm-eval-it {command} --model HuggingFaceTB/SmolLM2-135M --data notes.txt --limit 20`")


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
    # a file's suffix (the readers' list in config.schema, plus .gz): a missing file, not a hub id
    if spec.startswith((".", "/", "~")) or os.path.splitext(spec)[1] in FORMAT_BY_SUFFIX or spec.endswith(".gz"):
        raise UserError(f"--data: file {spec!r} does not exist")
    typo = builtin_typo(spec)
    if typo:
        raise UserError(f"--data: {spec!r} is not a file or a builtin name (did you mean {typo!r}?); builtin names: "
                        f"{', '.join(BUILTIN_DATASETS)}; a hub dataset id reads org/name")
    return {"hub": spec}


def _kl_models(args) -> list[dict]:
    """``kl`` without a config: --reference and --candidate are variants of --model (fp32, int8 ...) or models."""
    entries = []
    for flag, want in (("--reference", args.reference), ("--candidate", args.candidate)):
        if want in VARIANTS:
            if not args.model:
                raise UserError(f"{flag} {want}: a variant of --model; give --model too, or a model for {flag}")
            entries.append({**_model_entry(args.model), "name": want, **VARIANTS[want]})
        else:
            entries.append(_model_entry(want))
    if args.model and not any(e.get("name") for e in entries):
        raise UserError(f"kl: --model is used by variant names ({', '.join(VARIANTS)}) in --reference/--candidate; "
                        f"got neither")
    return entries


def kl_names(args, raw: Any) -> tuple[str, str]:
    """The names of the reference and the candidate: as given with a config, else the models' names."""
    if args.config is not None:
        return args.reference, args.candidate
    ref, cand = raw["models"][:2]
    return _name(ref), _name(cand)


def _built(args) -> dict:
    """The raw config that --model/--data (and for kl --reference/--candidate) stand for."""
    if not args.data:
        raise UserError(f"{args.command} --model needs --data (a file, a hub dataset id or one of "
                        f"{list(BUILTIN_DATASETS)})" if args.command != "kl" or args.model else _usage("kl"))
    models = _kl_models(args) if args.command == "kl" else [_model_entry(args.model)]
    name = args.name or default_model_name(**_model_entry(args.model or args.candidate))
    raw: dict = {"models": models, "datasets": [_data_entry(args.data)], "eval": {}, "output": {"run_name": name}}
    for item in args.overrides:
        apply_override(raw, item)
    return raw


def raw_for_run(args) -> dict:
    """The raw config of a config command: the file (or stdin), or one built from --model/--data; then the flags."""
    if args.config is None and not (args.model or (args.command == "kl" and args.data)):
        raise UserError(_usage(args.command))
    if args.config is not None and (args.model or args.data):
        raise UserError(f"{args.command}: give either a config or --model/--data, not both")
    raw = _built(args) if args.config is None else load_raw(args.config, args.overrides)
    if not isinstance(raw, dict):
        return raw
    for flag, key, _, _ in KEY_FLAGS:
        value = getattr(args, _dest(flag), None)
        if value is not None:
            for path in flag_paths(raw, key):
                _set(raw, path, value)
    if args.command == "run" and args.temperatures is not None:  # sweep's own are set by the sweep command
        sweep_temperatures(raw, args.temperatures)
    return raw


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def flag_paths(raw: dict, key: str) -> list[str]:
    """The dotted keys a flag's key stands for: ``models.*.dtype`` → ``models.0.dtype``, ``models.1.dtype`` ..."""
    head, _, tail = key.partition(".*.")
    if not tail:
        return [key]
    items = raw.get(head)
    return [f"{head}.{i}.{tail}" for i, x in enumerate(items)] if isinstance(items, list) else []


def _set(raw: dict, path: str, value: Any) -> None:
    node: Any = raw
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if not isinstance(node, (dict, list)):
            return  # validation reports the bad section
    if isinstance(node, dict):
        node[parts[-1]] = value


def command_line_origins(args, raw: Any) -> dict[str, str]:
    """Each config key the command line set → its name, so that an error there is blamed on it."""
    origins = override_origins(args.overrides)
    if isinstance(raw, dict):
        for flag, key, _, _ in KEY_FLAGS:
            if getattr(args, _dest(flag), None) is not None:
                origins.update({path: flag for path in flag_paths(raw, key)})
        if getattr(args, "temperatures", None) is not None:
            origins["eval.temperatures"] = "--temperatures"
    return origins


def context_protocol(raw: Any) -> None:
    """``context``: stride = window (every context length from 1 to the window is then observed)."""
    if not isinstance(raw, dict):
        return
    ev = raw.setdefault("eval", {}) if isinstance(raw.get("eval", {}), dict) else raw["eval"]
    if isinstance(ev, dict):
        ev["stride"] = ev.get("window", 1024)
