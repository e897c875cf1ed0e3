"""The root of kfp-bot's one exception hierarchy, below all four layers.

Every error carries a message a user can act on. They are raised deep inside and caught at the
edges (HTTP route, bus worker, CLI), where they become a visible state: a check, a comment, an
exit status with one line per problem. This package sits below `pipeline_registry`, `handlers`,
`deploy` and `bot` and imports none of them, so every layer extends the hierarchy
(`pipeline_registry/errors.py`, `deploy/errors.py`, `bot/store/errors.py`, ...) without one
layer importing another's errors just to reach the root. Only errors that cross layers live
here: the root itself and `IsolationUnavailable` (raised by `deploy`, decided on by `handlers`).
"""

from __future__ import annotations


class KfpBotError(Exception):
    """Base of every failure kfp-bot reports to a user (never shown as a traceback)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class IsolationUnavailable(KfpBotError):
    """This machine may not execute repository code (no sandbox, and running without one is not
    allowed): the machine is at fault, not the repository, so a run ends in `error`."""
