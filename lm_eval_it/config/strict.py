"""The base of every config section: unknown keys are errors and defaults are validated too.

Example::

    >>> from pydantic import ValidationError
    >>> class Section(Strict):
    ...     size: int = 1
    >>> try:
    ...     Section(sise=2)
    ... except ValidationError as e:
    ...     print(e.errors()[0]["type"])
    extra_forbidden
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: ``extra="forbid"`` (a typo is an error, not ignored), defaults validated."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
