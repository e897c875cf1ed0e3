"""The one exception hierarchy for kfp-bot's own failures.

Every error carries a message a user can act on. They are raised deep inside and caught at the
edges (HTTP route, bus worker, CLI), where they become a visible state: a check, a comment, an
exit status with one line per problem. The root lives here, at the bottom of the dependency
graph, so that `deploy/`, `handlers/` and `bot/` can extend it without importing each other.
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


class ConfigError(KfpBotError):
    """A repository file (`settings.yaml`, `.kfp-bot.yaml`, ...) is malformed or invalid.

    `file` is repository-relative; `line` is 1-based when known; `field` is a dotted path.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        where = file if line is None else f"{file}:{line}"
        what = f"{field}: {message}" if field else message
        super().__init__(f"{where}: {what}", hint=hint)


class RepositoryError(KfpBotError):
    """Git could not answer: not a repository, unknown revision, unreadable file."""


class UnknownPipelineError(KfpBotError):
    """A pipeline name that the repository does not contain."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(self.known) if self.known else "none"
        super().__init__(f"unknown pipeline '{name}'", hint=f"pipelines in this repository: {listing}")


class ParameterError(KfpBotError):
    """Pipeline parameters that do not match the compiled pipeline's declared inputs."""

    def __init__(self, problems: list[str], *, valid: list[str] | None = None) -> None:
        self.problems = list(problems)
        self.valid = list(valid or [])
        hint = f"declared inputs: {', '.join(self.valid)}" if self.valid else None
        super().__init__("; ".join(self.problems), hint=hint)


class IsolationUnavailable(KfpBotError):
    """This machine may not execute repository code (no sandbox, and running without one is not
    allowed): the machine is at fault, not the repository, so a run ends in `error`."""
