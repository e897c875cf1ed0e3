"""`.kfp-bot.yaml`: the optional repository configuration, validated.

With no file, the defaults describe the seed template exactly: `pipelines/`, `components/`,
the repository root as the Docker build context, autorun on. Unknown keys are an error with a
suggestion, so a typo never silently turns a setting off.
"""

from __future__ import annotations

import enum
import re
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from pipeline_registry.autorun import ALWAYS, AutorunRule
from pipeline_registry.errors import ConfigError
from pipeline_registry.layout_config import ImageSource, PipelineSource
from pipeline_registry.limits import LimitsConfig
from pipeline_registry.yamlfile import YamlDocument, parse_yaml, validate_model

CONFIG_FILE = ".kfp-bot.yaml"

DEFAULT_IGNORE = ("**/*.md", "**/*.rst", "docs/**", "LICENSE", "LICENSE.*", ".gitignore")


_RESERVED_ENV = ("PATH", "HOME", "TMPDIR", "USER", "SHELL", "PWD")


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
    # Validators are built on first use: `kfp-bot plan` on a repository without `.kfp-bot.yaml`
    # never validates one, and its start-up does not pay for building them.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class CompileConfig(_Strict):
    """The compile environment and limits (`compile:` in `.kfp-bot.yaml`)."""

    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    use_project_files: bool = True
    mode: CompileMode = CompileMode.AUTO
    timeout_seconds: int = Field(default=300, ge=5, le=3600)
    memory_mb: int = Field(default=4096, ge=256, le=65536)
    # Folders put on the import path when compiling and when following imports (`src`,
    # `components/*/src`): the repository's own packages, imported the way the repository runs.
    python_path: tuple[str, ...] = ()
    # An exact kfp pin that does not install on the bot's Python falls back to the nearest
    # release of the same minor version that does (said on the check).
    fallback_to_nearest_patch: bool = True
    # Non-secret variables a pipeline file reads when imported (`os.environ["PROJECT_ID"]`).
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _variables(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
                raise ValueError(f"'{name}' is not an environment variable name")
            if name.upper() in _RESERVED_ENV or name.upper().startswith(("KFP_BOT_", "LD_", "PYTHON")):
                raise ValueError(f"'{name}' is set by the bot's sandbox and cannot be changed")
        return value

    @field_validator("python_path")
    @classmethod
    def _folders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip().strip("/") for v in value)
        for folder in cleaned:
            if not folder or folder.startswith("..") or "/../" in folder:
                raise ValueError(f"'{folder}' must be a folder inside the repository")
        return cleaned


class PipelineOverride(_Strict):
    """Per-pipeline settings under `pipelines.<name>:`."""

    target: Target | None = None
    autorun: AutorunRule | None = None
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
    autorun: AutorunRule = ALWAYS
    allowed_users: tuple[str, ...] = ()
    slack_channel: str | None = None
    compile: CompileConfig = Field(default_factory=CompileConfig.model_construct)
    # Concurrent runs and daily budgets (trusted: the default branch's apply).
    limits: LimitsConfig = Field(default_factory=LimitsConfig.model_construct)
    pipelines: dict[str, PipelineOverride] = Field(default_factory=dict)
    # Other layouts: where the pipelines are, when not in `pipelines_dir/<name>/`.
    pipeline_files: tuple[PipelineSource, ...] = ()
    exclude: tuple[str, ...] = ()
    # Images named inline in pipeline code -> the Dockerfile (and build context) that builds them.
    images: dict[str, ImageSource] = Field(default_factory=dict)
    # Line of each key of the file, by key path: errors found after validation name it too.
    _lines: dict[tuple[str, ...], int] = PrivateAttr(default_factory=dict)

    @property
    def declares_pipelines(self) -> bool:
        """True when `pipeline_files` lists the pipelines (the template's layout is not searched)."""
        return bool(self.pipeline_files)

    def line_of(self, *path: str | int) -> int | None:
        """The line of the key at `path` in `.kfp-bot.yaml` (or of its nearest parent)."""
        key = tuple(str(p) for p in path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None

    def error(self, message: str, *path: str | int, hint: str | None = None) -> ConfigError:
        """A `ConfigError` pointing at the key `path` of `.kfp-bot.yaml` (file, line and key)."""
        return ConfigError(CONFIG_FILE, message, line=self.line_of(*path),
                           field=".".join(str(p) for p in path) or None, hint=hint)

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
        return self.pipelines.get(pipeline) or _NO_OVERRIDE

    def autorun_for(self, pipeline: str) -> AutorunRule:
        """The pipeline's autorun: its own `pipelines.<name>.autorun`, else the repository's."""
        value = self.override(pipeline).autorun
        return self.autorun if value is None else value

    def target_for(self, pipeline: str) -> Target | None:
        """The configured target; None leaves the choice to the bot's default runner."""
        return self.override(pipeline).target or self.target


# The defaults, valid by construction: built without running (or building) the validators.
DEFAULT_CONFIG = RepoConfig.model_construct()
_NO_OVERRIDE = PipelineOverride.model_construct()


def load_repo_config(text: str | bytes | None) -> RepoConfig:
    """Parse and validate `.kfp-bot.yaml` contents; `None` (no file) gives the defaults."""
    if text is None:
        return DEFAULT_CONFIG
    doc = parse_yaml(text, CONFIG_FILE)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ConfigError(CONFIG_FILE, "must be a mapping of settings", line=1,
                          hint="see the README's '.kfp-bot.yaml' section")
    config = validate_model(RepoConfig, doc)
    config._lines = _key_lines(doc)
    return config


def _key_lines(doc: YamlDocument) -> dict[tuple[str, ...], int]:
    """Every key path of the document (list items by index) with its 1-based line."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node | None, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(getattr(key, "value", "")))
                lines[here] = key.start_mark.line + 1
                walk(value, here)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                here = (*path, str(index))
                lines[here] = item.start_mark.line + 1
                walk(item, here)

    walk(doc.node, ())
    return lines
