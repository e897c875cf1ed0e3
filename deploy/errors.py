"""Failures of building, compiling and running, in the one `KfpBotError` hierarchy."""

from __future__ import annotations

from kfp_bot_errors import KfpBotError


class CompileError(KfpBotError):
    """A pipeline file could not be compiled: names the file and what to do."""

    def __init__(self, file: str, message: str, *, hint: str | None = None, output: str = "") -> None:
        self.file = file
        self.output = output
        super().__init__(f"{file}: {message}", hint=hint)


class EnvironmentBuildError(KfpBotError):
    """The repository's declared compile environment could not be installed."""

    def __init__(self, message: str, *, installer_tail: str = "", transient: bool = False) -> None:
        self.installer_tail = installer_tail
        # True when trying again may succeed (a time limit): such a failure is not remembered.
        self.transient = transient
        text = message if not installer_tail else f"{message}\n--- installer output (last lines) ---\n{installer_tail}"
        super().__init__(text, hint="check the compile requirements in .kfp-bot.yaml or pyproject.toml")


class RunError(KfpBotError):
    """A pipeline run could not be started or did not finish."""


class BuildError(KfpBotError):
    """A component image could not be built."""


class DeployError(KfpBotError):
    """A compiled template could not be uploaded, or a schedule could not be applied."""
