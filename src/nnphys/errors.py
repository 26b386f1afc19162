"""Typed errors.

Errors a user can cause (a bad config value, an unknown study, k > d - 1, lr <= 0) are
``NnphysError`` subclasses: the CLI prints ``str(err)`` as one line and exits with code 2.
Anything else that escapes is a bug and keeps its traceback: :func:`user_error` is the one
place that tells the two apart.
"""

from __future__ import annotations


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space: how
    every message meant for a terminal line or a table cell is shown."""
    return " ".join(str(text).split())


class NnphysError(Exception):
    """Base class of every error a user can cause."""


class ConfigError(NnphysError, ValueError):
    """A value a user chose is out of range or inconsistent.

    ``field`` names the offending parameter; the message says what is allowed.
    ``ConfigError("k", "must satisfy 1 <= k <= d - 1 (got k=5, d=4)")`` prints as
    ``k: must satisfy 1 <= k <= d - 1 (got k=5, d=4)``.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class StoreError(NnphysError):
    """A results location or store that nnphys cannot use as asked: a file where a directory
    should be, an unwritable path, a file that is not an nnphys store, a newer store version.

    ``path`` names the location; the message says what is wrong and what would work. The store
    is never modified by the check that raises this."""

    def __init__(self, path: str, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}")


class StoreUnavailable(StoreError):
    """A store that failed while a command read or wrote it (SQLite refused the operation).
    ``reason`` is SQLite's own message; the subclass says which kind of trouble it is. The message
    points at ``--results``, the option that chose the store."""

    def __init__(self, path: str, reason: str):
        super().__init__(path, reason)
        self.reason = reason

    def __str__(self) -> str:
        return f"results store: {self.reason} (check --results)"


class StoreBusy(StoreUnavailable):
    """Another process held the store locked for longer than the busy timeout."""


class StoreDamaged(StoreUnavailable):
    """The store file turned out damaged, or not a database, while it was being read."""


class StoreFull(StoreUnavailable):
    """The disk (or quota) under the store is full."""


class StoreReadOnly(StoreUnavailable):
    """The store (or its folder) cannot be opened or written by this process."""


class StoreIOError(StoreUnavailable):
    """The operating system reported an I/O error on the store file."""


class UnknownStudyError(NnphysError, KeyError):
    """A study name that is not in the registry."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(name)

    def __str__(self) -> str:  # KeyError would quote the message
        return f"study: unknown study {self.name!r}; known: {', '.join(self.known) or '(none)'}"


class Diverged(Exception):
    """Raised by a study's ``run(job)`` when its loss turned non-finite.

    The runner records the job as ``diverged`` (not ``failed``) together with ``metrics``,
    which may hold what was measured before the divergence.
    """

    def __init__(self, message: str = "loss became non-finite", metrics: dict | None = None):
        self.metrics = dict(metrics or {})
        super().__init__(message)


def user_error(e: BaseException) -> str | None:
    """The one-line message of an error a user caused (what the CLI prints after
    ``nnphys: error:``), or None when ``e`` is a bug and must keep its traceback.

    User errors: every :class:`NnphysError` (a bad option or spec value, an unusable results
    location or store); an ``OSError`` that names a path (permissions, a full disk, a vanished
    folder: the environment refused a path the user chose; one without a path is a bug); and a
    command-line usage error (click's exceptions, recognised by ``format_message`` and
    ``exit_code``: an unknown option, a value out of an option's range)."""
    if isinstance(e, NnphysError):
        text = str(e)
    elif isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or one_line(e).replace('Value error, ', '')}"
    elif hasattr(e, "format_message") and hasattr(e, "exit_code"):
        text = e.format_message()
    else:
        return None
    return one_line(text).replace("Value error, ", "")
