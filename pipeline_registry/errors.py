"""Failures of reading a repository: its files, its git history, its pipelines' parameters.

Part of the one `KfpBotError` hierarchy (rooted in `kfp_bot_errors`); raised here and caught at
the edges (HTTP route, bus worker, CLI), where they become a check, a comment or an exit status.
"""

from __future__ import annotations

from kfp_bot_errors import KfpBotError


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


class ComponentLoadError(KfpBotError):
    """A pipeline file loads components from paths that do not exist (a renamed search path)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems),
                         hint="fix the path or the component name, or restore the folder it names")
