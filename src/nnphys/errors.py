"""Typed errors.

Errors a user can cause (a bad config value, an unknown study, k > d - 1, lr <= 0) are
``NnphysError`` subclasses: the CLI prints ``str(err)`` as one line and exits with code 2.
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


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
