"""`.kfp-bot.yaml`: the optional repository configuration, validated.

With no file, the defaults describe the seed template exactly: `pipelines/`, `components/`,
the repository root as the Docker build context, autorun on. Unknown keys are an error with a
suggestion, so a typo never silently turns a setting off.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipeline_registry.errors import ConfigError
from pipeline_registry.yamlfile import parse_yaml, validate_model

CONFIG_FILE = ".kfp-bot.yaml"

DEFAULT_IGNORE = ("**/*.md", "**/*.rst", "docs/**", "LICENSE", "LICENSE.*", ".gitignore")


class Target(enum.Enum):
    """Where a pipeline runs."""

    LOCAL = "local"
    VERTEX = "vertex"
    KFP = "kfp"


class BuildContext(enum.Enum):
    """The directory `docker build` runs in; `COPY` sources are relative to it."""

    REPOSITORY = "repository"
    COMPONENT = "component"


class CompileMode(enum.Enum):
    """How a pipeline file is turned into a pipeline package."""

    AUTO = "auto"
    IMPORT = "import"
    SCRIPT = "script"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CompileConfig(_Strict):
    """The compile environment and limits (`compile:` in `.kfp-bot.yaml`)."""

    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    use_project_files: bool = True
    mode: CompileMode = CompileMode.AUTO
    timeout_seconds: int = Field(default=300, ge=5, le=3600)
    memory_mb: int = Field(default=4096, ge=256, le=65536)


class PipelineOverride(_Strict):
    """Per-pipeline settings under `pipelines.<name>:`."""

    target: Target | None = None
    autorun: bool | None = None
    pipeline_file: str | None = None
    slack_channel: str | None = None
    allowed_users: tuple[str, ...] | None = None


class RepoConfig(_Strict):
    """The whole `.kfp-bot.yaml`, with the seed template's layout as defaults."""

    version: Literal[1] = 1
    pipelines_dir: str = "pipelines"
    components_dir: str = "components"
    global_files: tuple[str, ...] = ()
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    image_registry: str = "gcr.io/my-project"
    build_context: BuildContext = BuildContext.REPOSITORY
    target: Target | None = None
    autorun: bool = True
    allowed_users: tuple[str, ...] = ()
    slack_channel: str | None = None
    compile: CompileConfig = CompileConfig()
    pipelines: dict[str, PipelineOverride] = Field(default_factory=dict)

    @field_validator("pipelines_dir", "components_dir")
    @classmethod
    def _relative_dir(cls, value: str) -> str:
        cleaned = value.strip().strip("/")
        if not cleaned or cleaned.startswith("..") or value.startswith("/"):
            raise ValueError("must be a folder inside the repository")
        return cleaned

    @field_validator("image_registry")
    @classmethod
    def _registry(cls, value: str) -> str:
        cleaned = value.strip().rstrip("/")
        if not cleaned or any(ch.isspace() for ch in cleaned) or ":" in cleaned.split("/")[-1]:
            raise ValueError("must be an image registry path such as 'europe-docker.pkg.dev/proj/repo'")
        return cleaned

    def override(self, pipeline: str) -> PipelineOverride:
        """The per-pipeline override block (empty when none is configured)."""
        return self.pipelines.get(pipeline, PipelineOverride())

    def autorun_for(self, pipeline: str) -> bool:
        value = self.override(pipeline).autorun
        return self.autorun if value is None else value

    def target_for(self, pipeline: str) -> Target | None:
        """The configured target; None leaves the choice to the bot's default runner."""
        return self.override(pipeline).target or self.target


def load_repo_config(text: str | bytes | None) -> RepoConfig:
    """Parse and validate `.kfp-bot.yaml` contents; `None` (no file) gives the defaults."""
    if text is None:
        return RepoConfig()
    doc = parse_yaml(text, CONFIG_FILE)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ConfigError(CONFIG_FILE, "must be a mapping of settings", line=1,
                          hint="see the README's '.kfp-bot.yaml' section")
    return validate_model(RepoConfig, doc)
