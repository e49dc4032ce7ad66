"""Open a Hugging Face hub dataset, failing fast with one line when the hub is out of reach.

:class:`StreamedTexts` reads the documents of a streamed one (``streaming: true``)
lazily: iterating it again re-opens the stream, so no corpus has to fit in memory.

``datasets.load_dataset`` retries an unreachable hub for about half a minute
before it gives up. Here, unless ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is
set (then only the local cache is read, which answers at once), one metadata
request is made first; a connection error there becomes a :class:`UserError`
that names the hub id and says how to work offline.

Example::

    >>> is_network_error(ConnectionError("[Errno -2] Name or service not known"))
    True
    >>> is_network_error(ValueError("Unknown split 'tset'"))
    False
"""

from __future__ import annotations

import itertools
import os

from lm_eval_it.errors import UserError, did_you_mean

_TRUE = {"1", "on", "yes", "true"}
_NETWORK_ERRORS = {"ConnectionError", "ConnectError", "ConnectTimeout", "TimeoutException", "NetworkError",
                   "TransportError", "ReadTimeout", "Timeout", "gaierror", "OfflineModeIsEnabled"}


def hub_offline() -> bool:
    """Whether the user asked for the local cache only (``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE``)."""
    return any(os.environ.get(k, "").strip().lower() in _TRUE for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def is_network_error(e: BaseException) -> bool:
    """True for a connection failure (any HTTP library's), looking through causes too."""
    seen = 0
    while e is not None and seen < 8:
        if isinstance(e, (ConnectionError, TimeoutError)) or {c.__name__ for c in type(e).__mro__} & _NETWORK_ERRORS:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _unreachable(hub_id: str, where: str, reason: str) -> UserError:
    return UserError(f"{where}: cannot reach the Hugging Face hub for {hub_id!r} ({reason}); set path: to a "
                     f"local copy, or HF_HUB_OFFLINE=1 to read a copy in the datasets cache")


def check_reachable(hub_id: str, revision: str | None, where: str) -> None:
    """One quick metadata request: unreachable hub or unknown id → :class:`UserError` (no retries)."""
    from huggingface_hub import HfApi

    try:
        HfApi().dataset_info(hub_id, revision=revision, timeout=10)
    except Exception as e:  # noqa: BLE001 - sorted below
        if is_network_error(e):
            raise _unreachable(hub_id, where, _first_line(e)) from None
        if type(e).__name__ == "RepositoryNotFoundError":
            raise UserError(f"{where}: hub dataset {hub_id!r} not found on the Hugging Face hub "
                            f"(a private one needs `hf auth login`)") from None
        # anything else (gated, bad revision ...) is reported by load_dataset below


def open_hub(hub_id: str, config: str | None, split: str, revision: str | None, where: str,
             streaming: bool = False):
    """``datasets.load_dataset(hub_id, config, split=..., revision=..., streaming=...)`` with one-line errors."""
    import datasets

    offline = hub_offline()
    if not offline:
        check_reachable(hub_id, revision, where)
    try:
        return datasets.load_dataset(hub_id, config, split=split, revision=revision, streaming=streaming)
    except Exception as e:  # noqa: BLE001 - the library's reason, on one line
        if offline and is_network_error(e):
            raise UserError(f"{where}: could not load hub dataset {hub_id!r} ({config}, {split}): not in the "
                            f"local datasets cache and HF_HUB_OFFLINE is set; set path: to a local copy") from None
        if is_network_error(e):
            raise _unreachable(hub_id, where, _first_line(e)) from None
        raise UserError(f"{where}: could not load hub dataset {hub_id!r} ({config}, {split}): {_first_line(e)}") from None


class StreamedTexts:
    """The documents of a streamed hub dataset: re-iterable, each pass re-opens the stream.

    ``limit`` rows are read (``itertools.islice``); a row without the text field, or
    with null there, is an error naming it (``row N``, from 1). ``mode: documents``
    yields each non-empty row (empty ones are counted in ``skipped_empty``),
    ``mode: stream`` one document, the rows joined by ``separator``.
    ``len()`` raises :class:`TypeError` (the count is unknown before a full pass);
    after one, ``counted`` and ``skipped_empty`` hold the numbers.

    >>> import datasets
    >>> rows = datasets.Dataset.from_dict({"text": ["a", "", "b", "c"]}).to_iterable_dataset()
    >>> texts = StreamedTexts(rows, "text", "demo", limit=3)
    >>> list(texts), list(texts), texts.counted, texts.skipped_empty
    (['a', 'b'], ['a', 'b'], 2, 1)
    """

    def __init__(self, rows, text_field: str, where: str, limit: int | None = None,
                 mode: str = "documents", separator: str = "\n\n"):
        names = getattr(rows, "column_names", None)  # known when the hub lists the features
        if names is not None and text_field not in names:
            raise UserError(f"{where}: unknown text_field {text_field!r}{did_you_mean(text_field, names)}; "
                            f"available fields: {', '.join(names)}")
        self.rows, self.text_field, self.where = rows, text_field, where
        self.limit, self.mode, self.separator = limit, mode, separator
        self.counted: int | None = None
        self.skipped_empty: int | None = None

    def _values(self):
        for i, row in enumerate(itertools.islice(iter(self.rows), self.limit), 1):
            if self.text_field not in row:
                raise UserError(f"{self.where}: row {i} has no field {self.text_field!r}; "
                                f"available fields: {', '.join(row)}")
            v = row[self.text_field]
            if v is None:
                raise UserError(f"{self.where}: row {i} has no {self.text_field!r} (it is null); a row needs a text")
            if not isinstance(v, str):
                raise UserError(f"{self.where}: row {i} field {self.text_field!r} is {type(v).__name__}, expected text")
            yield v

    def __iter__(self):
        if self.mode == "stream":
            text = self.separator.join(self._values())
            if text:
                yield text
            self.counted, self.skipped_empty = int(bool(text)), 0
            return
        kept = skipped = 0
        for v in self._values():
            if v:
                kept += 1
                yield v
            else:
                skipped += 1
        self.counted, self.skipped_empty = kept, skipped

    def __len__(self) -> int:
        raise TypeError("streamed documents have no len(): iterate them (each pass re-opens the stream)")

    def __repr__(self) -> str:
        return f"StreamedTexts({self.where}, limit={self.limit}, mode={self.mode})"
