"""User-facing errors: one line, exit code 2, no traceback.

Anything the user can fix (a bad config key, a missing file, an unknown
dataset field) is raised as :class:`UserError`. The CLI catches it, prints
``error: <message>`` and exits with code 2.

Example::

    >>> from lm_eval_it.errors import UserError
    >>> str(UserError("eval.stride: got 0, expected an integer >= 1"))
    'eval.stride: got 0, expected an integer >= 1'
"""

from __future__ import annotations

import difflib
from typing import Iterable


class UserError(Exception):
    """An error caused by input the user controls; shown as one line."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for a likely typo, or ``""``.

    >>> did_you_mean("strid", ["stride", "window"])
    " (did you mean 'stride'?)"
    """
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class RunStopped(UserError):
    """Something outside the run stopped it (a server gone after its retries, or one answering garbage): the
    runner keeps its checkpoint, as on Ctrl-C, and the CLI prints the line that resumes it."""
