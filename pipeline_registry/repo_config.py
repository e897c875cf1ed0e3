"""`.kfp-bot.yaml`: the optional repository configuration, validated.

With no file, the defaults describe the seed template exactly: `pipelines/`, `components/`,
the repository root as the Docker build context, autorun on. Unknown keys are an error with a
suggestion, so a typo never silently turns a setting off.

The models are frozen dataclasses that pydantic validates only when a file is read
(`config_rules`), and a validated file is kept by its git blob id, in memory and in the data
folder's parse cache: a plan whose `.kfp-bot.yaml` is absent or already validated (by any earlier
plan, command line or service) imports neither pydantic nor a YAML parser.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pipeline_registry.autorun import ALWAYS, Autorun, AutorunRule
from pipeline_registry.cache import DigestCache
from pipeline_registry.config_rules import STRICT, After, Limits
from pipeline_registry.errors import ConfigError
from pipeline_registry.layout_config import ImageSource, PipelineEntry
from pipeline_registry.limits import LimitsConfig

if TYPE_CHECKING:
    from pipeline_registry.yamlfile import YamlDocument

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


def _variables(value: dict[str, str]) -> dict[str, str]:
    for name in value:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
            raise ValueError(f"'{name}' is not an environment variable name")
        if name.upper() in _RESERVED_ENV or name.upper().startswith(("KFP_BOT_", "LD_", "PYTHON")):
            raise ValueError(f"'{name}' is set by the bot's sandbox and cannot be changed")
    return value


def _folders(value: tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(v.strip().strip("/") for v in value)
    for folder in cleaned:
        if not folder or folder.startswith("..") or "/../" in folder:
            raise ValueError(f"'{folder}' must be a folder inside the repository")
    return cleaned


def _relative_dir(value: str) -> str:
    cleaned = value.strip().strip("/")
    if not cleaned or cleaned.startswith("..") or value.startswith("/"):
        raise ValueError("must be a folder inside the repository")
    return cleaned


def _registry(value: str) -> str:
    cleaned = value.strip().rstrip("/")
    if not cleaned or any(ch.isspace() for ch in cleaned) or ":" in cleaned.split("/")[-1]:
        raise ValueError("must be an image registry path such as 'europe-docker.pkg.dev/proj/repo'")
    return cleaned


@dataclass(frozen=True)
class CompileConfig:
    """The compile environment and limits (`compile:` in `.kfp-bot.yaml`)."""

    __pydantic_config__ = STRICT

    requirements: tuple[str, ...] = ()
    requirements_file: str | None = None
    use_project_files: bool = True
    mode: CompileMode = CompileMode.AUTO
    timeout_seconds: Annotated[int, Limits(ge=5, le=3600)] = 300
    memory_mb: Annotated[int, Limits(ge=256, le=65536)] = 4096
    # Folders put on the import path when compiling and when following imports (`src`,
    # `components/*/src`): the repository's own packages, imported the way the repository runs.
    python_path: Annotated[tuple[str, ...], After(_folders)] = ()
    # An exact kfp pin that does not install on the bot's Python falls back to the nearest
    # release of the same minor version that does (said on the check).
    fallback_to_nearest_patch: bool = True
    # Non-secret variables a pipeline file reads when imported (`os.environ["PROJECT_ID"]`).
    env: Annotated[dict[str, str], After(_variables)] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineOverride:
    """Per-pipeline settings under `pipelines.<name>:`."""

    __pydantic_config__ = STRICT

    target: Target | None = None
    autorun: Autorun | None = None
    pipeline_file: str | None = None
    slack_channel: str | None = None
    allowed_users: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RepoConfig:
    """The whole `.kfp-bot.yaml`, with the seed template's layout as defaults."""

    __pydantic_config__ = STRICT

    version: Literal[1] = 1
    pipelines_dir: Annotated[str, After(_relative_dir)] = "pipelines"
    components_dir: Annotated[str, After(_relative_dir)] = "components"
    global_files: tuple[str, ...] = ()
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    image_registry: Annotated[str, After(_registry)] = "gcr.io/my-project"
    build_context: BuildContext = BuildContext.REPOSITORY
    target: Target | None = None
    autorun: Autorun = ALWAYS
    allowed_users: tuple[str, ...] = ()
    slack_channel: str | None = None
    compile: CompileConfig = field(default_factory=CompileConfig)
    # Concurrent runs and daily budgets (trusted: the default branch's apply).
    limits: LimitsConfig = LimitsConfig()
    pipelines: dict[str, PipelineOverride] = field(default_factory=dict)
    # Other layouts: where the pipelines are, when not in `pipelines_dir/<name>/`.
    pipeline_files: tuple[PipelineEntry, ...] = ()
    exclude: tuple[str, ...] = ()
    # Images named inline in pipeline code -> the Dockerfile (and build context) that builds them.
    images: dict[str, ImageSource] = field(default_factory=dict)
    # Line of each key of the file, by key path: errors found after validation name it too. Not a
    # key of the file (pydantic refuses it there), nor part of what the configuration says.
    lines: dict[tuple[str, ...], int] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def declares_pipelines(self) -> bool:
        """True when `pipeline_files` lists the pipelines (the template's layout is not searched)."""
        return bool(self.pipeline_files)

    def line_of(self, *path: str | int) -> int | None:
        """The line of the key at `path` in `.kfp-bot.yaml` (or of its nearest parent)."""
        key = tuple(str(p) for p in path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None

    def error(self, message: str, *path: str | int, hint: str | None = None) -> ConfigError:
        """A `ConfigError` pointing at the key `path` of `.kfp-bot.yaml` (file, line and key)."""
        return ConfigError(CONFIG_FILE, message, line=self.line_of(*path),
                           field=".".join(str(p) for p in path) or None, hint=hint)

    def replace(self, **changes: Any) -> RepoConfig:
        """A copy with `changes` (taken from validated configurations, so not validated again),
        keeping the key lines of this file."""
        copy = dataclasses.replace(self, **changes)
        object.__setattr__(copy, "lines", self.lines)
        return copy

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


DEFAULT_CONFIG = RepoConfig()
_NO_OVERRIDE = PipelineOverride()
# Validated files by blob id: what the file says depends only on its bytes.
_VALIDATED: DigestCache[RepoConfig] = DigestCache("repo-config", maxsize=256)


def load_repo_config(text: str | bytes | None) -> RepoConfig:
    """Parse and validate `.kfp-bot.yaml` contents; `None` (no file) gives the defaults.

    A valid file is kept by its git blob id (in memory, and on disk when planning keeps its parses
    there): the same bytes are parsed and validated once. An invalid one is never kept, so every
    read names the file, line and field again."""
    if text is None:
        return DEFAULT_CONFIG
    data = text.encode() if isinstance(text, str) else text
    digest = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return _VALIDATED.get_or_compute(digest, lambda: _validated(data))


def _validated(text: bytes) -> RepoConfig:
    # YAML and pydantic load here only: a plan with a known (or no) configuration needs neither.
    from pipeline_registry.yamlfile import parse_yaml, validate_model

    doc = parse_yaml(text, CONFIG_FILE)
    if doc.data is not None and not isinstance(doc.data, dict):
        raise ConfigError(CONFIG_FILE, "must be a mapping of settings", line=1,
                          hint="see the README's '.kfp-bot.yaml' section")
    config = validate_model(RepoConfig, doc)
    object.__setattr__(config, "lines", _key_lines(doc))  # frozen: set once, before anyone sees it
    return config


def _key_lines(doc: YamlDocument) -> dict[tuple[str, ...], int]:
    """Every key path of the document (list items by index) with its 1-based line."""
    import yaml

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
