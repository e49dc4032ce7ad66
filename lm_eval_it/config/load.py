"""Loading a config: YAML files or stdin, ``key=value`` overrides, config-relative paths, one-line errors.

The typed config itself is :mod:`lm_eval_it.config.schema` (which re-exports these functions).
An error at a key that a command-line override or flag set names that override
(``override 'eval.windw=5': eval.windw: unknown key …``), not the config file.

Example::

    >>> cfg = parse_config({"models": [{"path": "org/model"}], "datasets": [{"builtin": "pydoc_topics"}]})
    >>> cfg.eval.window, cfg.eval.stride
    (1024, 1024)
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lm_eval_it.config.schema import RunConfig
from lm_eval_it.errors import UserError, did_you_mean


def _field_names(loc: tuple) -> list[str]:
    """The keys allowed at the place ``loc`` points to (for typo suggestions)."""
    cls: Any = RunConfig
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = cls.model_fields.get(part)
        if field is None:
            return []
        ann = field.annotation
        inner = getattr(ann, "__args__", None)
        cls = inner[0] if inner else ann
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return []
    return list(cls.model_fields)


def _format_error(err: ValidationError) -> tuple[tuple, str]:
    """The key the first error is at (a typo explains a missing key, so an unknown key goes first) and its line."""
    errors = err.errors()
    e = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p in ("int", "str"))))
    key = ".".join(str(p) for p in loc)
    if e["type"] == "extra_forbidden":
        allowed = _field_names(loc)
        return loc, f"{key}: unknown key{did_you_mean(loc[-1], allowed)}; expected one of: {', '.join(allowed)}"
    if e["type"] == "missing":
        return loc, f"{key}: required key is missing"
    msg = e["msg"].removeprefix("Value error, ")
    msg = msg.replace("Input should be", "expected").replace("List should have", "expected")
    shown = e.get("input")
    if e["type"] == "literal_error" and isinstance(shown, str):  # `builtin: pydoc_topic`
        msg += did_you_mean(shown, re.findall(r"'([^']*)'", str((e.get("ctx") or {}).get("expected", ""))))
    if not key:
        return loc, msg
    if "input" not in e or isinstance(shown, (dict, list)):
        return loc, f"{key}: {msg}"
    return loc, f"{key}: got {shown!r}, {msg}"


def override_origins(overrides: list[str]) -> dict[str, str]:
    """Each ``key=value`` override's key → how an error there is blamed: ``override 'key=value'``.

    >>> override_origins(["eval.windw=5"])
    {'eval.windw': "override 'eval.windw=5'"}
    """
    return {item.partition("=")[0].strip(): f"override {item!r}" for item in overrides if "=" in item}


def blame(loc: tuple, origins: dict[str, str]) -> str | None:
    """The origin (an override, a flag) that set the key at ``loc``, or a key above or below it; None if none did.

    >>> blame(("eval", "windw"), {"eval.windw": "override 'eval.windw=5'", "eval.stride": "--stride"})
    "override 'eval.windw=5'"
    >>> blame(("models", 0, "dtype"), {"eval.window": "--window"}) is None
    True
    """
    key, best = [str(p) for p in loc], None
    for order, (path, label) in enumerate(origins.items()):
        parts = path.split(".")
        n = min(len(parts), len(key))
        if n and parts[:n] == key[:n] and (best is None or (n, order) >= best[:2]):
            best = (n, order, label)
    return best[2] if best else None


def parse_config(raw: Any, source: str = "config", origins: dict[str, str] | None = None) -> RunConfig:
    """Validate a plain dict into a :class:`RunConfig`, or raise :class:`UserError`.

    ``origins`` maps the keys that overrides or flags set to their names (:func:`override_origins`): an
    error at one of those keys is blamed on it instead of on ``source``.
    """
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping with 'models' and 'datasets', got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        loc, message = _format_error(err)
        raise UserError(f"{blame(loc, origins or {}) or source}: {message}") from None


def apply_override(raw: dict, assignment: str) -> None:
    """Apply one ``dotted.path=value`` override in place (list indices allowed)."""
    if "=" not in assignment:
        raise UserError(f"override {assignment!r}: expected key=value, e.g. eval.stride=256")
    path, _, text = assignment.partition("=")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    parts = path.strip().split(".")
    node: Any = raw
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise UserError(f"override {path!r}: {where} is not an index of a list of {len(node)}")
            idx: Any = int(part)
        elif isinstance(node, dict):
            idx = part
        else:
            raise UserError(f"override {path!r}: {'.'.join(parts[:i])} is not a mapping or list")
        if last:
            node[idx] = value
        else:
            if isinstance(node, dict) and idx not in node:
                node[idx] = {}
            node = node[idx]


def read_raw(path: str | Path) -> dict:
    """The YAML document of a config file (safe loader), or of stdin when ``path`` is ``-``."""
    p = Path(path)
    try:
        if str(path) == "-":
            text = sys.stdin.read()
        elif not p.is_file():
            raise UserError(f"config file {str(p)!r} does not exist")
        else:
            text = p.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise UserError(f"{p}: YAML syntax error{where}: {problem}") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{p}: not UTF-8 text (byte offset {e.start})") from None
    return raw if raw is not None else {}


def _is_relative(p: Any) -> bool:
    return isinstance(p, str) and bool(p) and not (p.startswith(("/", "~")) or "://" in p or Path(p).is_absolute())


def resolve_relative_paths(raw: Any, base: Path) -> None:
    """Make relative ``path:`` entries absolute against ``base`` (the config file's folder), in place.

    Dataset paths always are local; a model path is taken as local when it starts with ``.``
    or exists under ``base`` (otherwise it is a hub id like ``org/name``).
    """
    if not isinstance(raw, dict):
        return
    for kind in ("datasets", "models"):
        for item in raw.get(kind) or [] if isinstance(raw.get(kind), list) else []:
            if not isinstance(item, dict) or not _is_relative(item.get("path")):
                continue
            p = item["path"]
            local = base / p
            if kind == "datasets" or p.startswith(".") or local.exists():
                item["path"] = os.path.normpath(local.absolute())


def load_raw(path: str | Path, overrides: list[str] = ()) -> dict:
    """:func:`read_raw`, relative paths resolved against the file's folder, then the overrides applied.

    Paths given in overrides (and in a config read from stdin) stay relative to the current directory.
    """
    raw = read_raw(path)
    if str(path) != "-":
        resolve_relative_paths(raw, Path(path).parent)
    for item in overrides:
        if not isinstance(raw, dict):
            break
        apply_override(raw, item)
    return raw


def finish_config(raw: Any, path: str | Path | None, origins: dict[str, str] | None = None) -> RunConfig:
    """Validate ``raw``; the run name defaults to the config file's stem (``stdin`` for ``-``, ``run`` for none).

    ``origins``: see :func:`parse_config` (the CLI passes its overrides and flags)."""
    source = "stdin" if str(path) == "-" else "command line" if path is None else str(path)
    cfg = parse_config(raw, source=source, origins=origins)
    if cfg.output.run_name is None:
        cfg.output.run_name = "stdin" if str(path) == "-" else "run" if path is None else Path(path).stem
    return cfg


def load_config(path: str | Path, overrides: list[str] = ()) -> tuple[RunConfig, dict]:
    """Read a YAML file (safe loader; ``-`` is stdin), apply overrides, validate.

    Returns the typed config and the raw dict it came from.
    """
    raw = load_raw(path, overrides)
    return finish_config(raw, path), raw
