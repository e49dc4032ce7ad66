"""The config reference as Markdown, generated from the typed config (:mod:`lm_eval_it.config.schema`, ``.eval``).

Every key of every section, with its type (constraints included), its default and the
``Field(description=…)`` text, so the documentation site's reference cannot drift from the
code: ``docs/hooks.py`` renders this page on every ``mkdocs build``, and a key without a
description is a build warning (an error under ``--strict``).

Example::

    >>> from lm_eval_it.config.eval import EvalConfig
    >>> rows = field_rows(EvalConfig)
    >>> rows[0][:3]
    ('window', 'int ≥ 2', '1024')
    >>> undocumented()
    []
"""

from __future__ import annotations

import json
import types
import typing

from pydantic import BaseModel

from lm_eval_it.config.eval import EvalConfig
from lm_eval_it.config.schema import DatasetConfig, ModelConfig, OutputConfig, RunConfig

SECTIONS = (("models", "a list; every model runs on every dataset", ModelConfig),
            ("datasets", "a list", DatasetConfig),
            ("eval", "one section", EvalConfig),
            ("output", "one section", OutputConfig))
_BOUNDS = (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"), ("min_length", "length ≥"))


def type_text(tp) -> str:
    """A readable type: ``Literal['a', 'b']`` → ``'a' | 'b'``, ``X | None`` kept, ``list[float]`` kept.

    >>> type_text(typing.Literal["a", "b"] | None), type_text(list[float]), type_text(int | str)
    ("'a' | 'b' | None", 'list[float]', 'int | str')
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin is list:
        return f"list[{type_text(args[0])}]"
    return getattr(tp, "__name__", str(tp))


def _bounds(info) -> str:
    parts = []
    for meta in info.metadata:
        for attr, sign in _BOUNDS:
            value = getattr(meta, attr, None)
            if value is not None:
                parts.append(f"{sign} {value}")
    return " " + ", ".join(parts) if parts else ""


def default_text(info) -> str:
    """The default as YAML would spell it (``null``, ``true``, ``[]``), or ``required``."""
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return json.dumps(value, ensure_ascii=False)


def field_rows(model: type[BaseModel]) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every field of ``model``, in declaration order."""
    return [(name, type_text(info.annotation) + _bounds(info), default_text(info), info.description or "")
            for name, info in model.model_fields.items()]


def undocumented() -> list[str]:
    """Dotted keys that have no description (the docs build warns about each)."""
    missing = [f"{key}" for key, *_, desc in field_rows(RunConfig) if not desc]
    for section, _, model in SECTIONS:
        missing += [f"{section}.{key}" for key, *_, desc in field_rows(model) if not desc]
    return missing


def _cell(text: str) -> str:
    """Prose for a table cell: one line, pipes escaped (inside code spans a pipe needs no escape)."""
    return text.replace("|", "\\|").replace("\n", " ")


def config_reference_md() -> str:
    """The whole reference page."""
    out = ["# Config reference", "",
           "Generated from the typed config (the pydantic models in `lm_eval_it/config/`: `schema.py`, `eval.py`, `backends.py`) on every docs build: every key, its type, "
           "its default and what it does. An unknown key, a wrong type or a value out of range is one "
           "`error: …` line naming the key, and exit code 2.", "",
           "A config has four top-level keys: `models`, `datasets`, `eval` and `output`. Any key can be "
           "overridden on the command line with a dotted path (`eval.stride=256`, `models.0.dtype=bf16`).", ""]
    for section, what, model in SECTIONS:
        out += [f"## `{section}`", "", f"{what}. {(model.__doc__ or '').strip()}", "",
                "| key | type | default | description |", "|---|---|---|---|"]
        out += [f"| `{k}` | `{t}` | `{d}` | {_cell(desc)} |" for k, t, d, desc in field_rows(model)]
        out.append("")
    return "\n".join(out)
