"""Configuration of kfp-bot, from `KFP_BOT_*` environment variables, validated at start-up.

This package is the only code that reads the environment. Every command but `plan`, and the
service, validates every setting (`Settings`, pydantic-settings, in `bot.config.settings`): a
missing or contradictory setting stops start-up with a message naming the variable; secrets are
`SecretStr` so they never appear in a log line, a repr or an error message.

`kfp-bot plan` uses one setting, the data folder its parse caches live in, and must start in
a few tens of milliseconds: `load_command_line_settings` reads and validates that variable
alone, exactly as `Settings` does (tests/bot/test_config.py compares them), without importing
pydantic. `Settings` and `load_settings` are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.config.base import (
    ENV_PREFIX,
    BuilderKind,
    BusKind,
    CommandLineSettings,
    ConfigurationError,
    ContainerEngine,
    LogFormat,
    RunnerKind,
    load_command_line_settings,
)

if TYPE_CHECKING:
    from bot.config.settings import Settings, load_settings

__all__ = ["ENV_PREFIX", "BuilderKind", "BusKind", "CommandLineSettings", "ConfigurationError", "ContainerEngine",
           "LogFormat", "RunnerKind", "Settings", "load_command_line_settings", "load_settings"]


def __getattr__(name: str) -> Any:
    # `Settings` and `load_settings` import pydantic-settings: only the commands that use them pay for it.
    if name in ("Settings", "load_settings"):
        from bot.config import settings

        value = globals()[name] = getattr(settings, name)  # looked up here once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
