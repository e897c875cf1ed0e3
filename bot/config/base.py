"""What every setting builds on, importable without pydantic: names, kinds, the configuration
error, and the one setting `kfp-bot plan` reads (see `bot.config`)."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from kfp_bot_errors import KfpBotError

ENV_PREFIX = "KFP_BOT_"


class ConfigurationError(KfpBotError):
    """The bot's own configuration is missing or contradictory; names the variable."""


class BusKind(enum.Enum):
    INPROCESS = "inprocess"
    PUBSUB = "pubsub"


class BuilderKind(enum.Enum):
    LOCAL = "local"
    CLOUDBUILD = "cloudbuild"


class ContainerEngine(enum.Enum):
    """Which engine the local builder builds images with: the first of docker and podman whose
    daemon answers (auto), exactly one of them, or none (builds are reported skipped)."""

    AUTO = "auto"
    DOCKER = "docker"
    PODMAN = "podman"
    NONE = "none"

    @property
    def candidates(self) -> tuple[str, ...]:
        """The engines to try, in order."""
        if self is ContainerEngine.AUTO:
            return ("docker", "podman")
        return () if self is ContainerEngine.NONE else (self.value,)


class RunnerKind(enum.Enum):
    LOCAL = "local"
    VERTEX = "vertex"
    KFP = "kfp"


class LogFormat(enum.Enum):
    JSON = "json"
    TEXT = "text"


def default_data_dir() -> Path:
    """`KFP_BOT_DATA_DIR` when it is not set."""
    return Path.home() / ".cache" / "kfp-bot"


@dataclass(frozen=True)
class CommandLineSettings:
    """The settings `kfp-bot plan` uses: where the data folder (and its parse caches) is."""

    data_dir: Path

    @property
    def cache_dir(self) -> Path:
        """Checkouts, compile environments and parse caches (as `Settings.cache_dir`)."""
        return self.data_dir / "cache"


def load_command_line_settings() -> CommandLineSettings:
    """`KFP_BOT_DATA_DIR` read as `Settings` reads it (names are not case-sensitive, a path is
    taken as written), with the same default; nothing else is read, nor pydantic imported."""
    wanted = (ENV_PREFIX + "data_dir").lower()
    value = None
    for name, text in os.environ.items():
        if name.lower() == wanted:
            value = text
    return CommandLineSettings(data_dir=default_data_dir() if value is None else Path(value))
