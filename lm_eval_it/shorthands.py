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

from typing import Any

from .config import default_model_name
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
