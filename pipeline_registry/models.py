"""Frozen domain models of a KFP monorepo and of a plan.

These are the values that cross module boundaries: discovery produces `Pipeline` and
`Component`, planning produces a `Plan`, compilation reports `PipelineInput`s. They are
immutable so they can be shared between threads and cached safely.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

INLINE_PREFIX = "image:"


@dataclass(frozen=True)
class Component:
    """One component folder: `pipelines/<pipeline>/<name>/` or `components/<name>/`."""

    name: str
    path: str
    shared: bool
    spec_file: str | None = None
    dockerfile: str | None = None
    image_repository: str | None = None
    # The build context folder when it is the component's own ("" = the repository root);
    # None follows `build_context` of `.kfp-bot.yaml`.
    build_context: str | None = None
    # An image named inline in pipeline code (`images:`), built from the Dockerfile in `path`.
    inline: bool = False

    @property
    def key(self) -> str:
        """What the component's image is known by: its folder, or `image:<name>` for an inline image
        (whose Dockerfile folder may also be a component of its own)."""
        return f"{INLINE_PREFIX}{self.image_repository}" if self.inline else self.path

    @property
    def builds_image(self) -> bool:
        """True when the component has a Dockerfile, i.e. an image the bot must build."""
        return self.dockerfile is not None and self.image_repository is not None


@dataclass(frozen=True)
class Pipeline:
    """One pipeline: a folder `pipelines/<name>/` with its own components (the template's
    layout), or a pipeline function of a file `.kfp-bot.yaml` declares (`pipeline_files`).

    `path` is the pipeline's folder; only a template pipeline owns every file inside it
    (`owns_folder`): a declared pipeline owns its pipeline file and settings file, and shares
    its folder with other pipelines and helpers. `function` names the `@dsl.pipeline` function
    to compile when the file defines several (None: the file's only one).
    """

    name: str
    path: str
    pipeline_file: str | None
    settings_file: str | None
    components: tuple[Component, ...] = ()
    function: str | None = None
    owns_folder: bool = True
    # Where settings would go when there are none (declared pipelines: beside the file).
    settings_default: str | None = None

    @property
    def own_files(self) -> tuple[str, ...]:
        """The files that belong to this pipeline alone, besides its folder when it owns it."""
        return tuple(f for f in (self.pipeline_file, self.settings_file) if f)

    @property
    def settings_path(self) -> str:
        """Where the pipeline's settings are, or would be: where to set a missing parameter."""
        return self.settings_file or self.settings_default or f"{self.path}/settings.yaml"


class ReasonKind(enum.Enum):
    """Through which dependency rule a changed file reaches a pipeline."""

    PIPELINE_FOLDER = "pipeline-folder"
    SHARED_COMPONENT = "shared-component"
    IMAGE_INPUT = "image-input"
    PYTHON_IMPORT = "python-import"
    GLOBAL_FILE = "global-file"
    DELETED = "deleted"


@dataclass(frozen=True)
class Reason:
    """Why a pipeline is affected: the changed file and the rule that connects them."""

    path: str
    kind: ReasonKind
    detail: str = ""

    @property
    def text(self) -> str:
        """One human sentence, as shown in the CLI table and the check summary."""
        return f"{self.path}: {self.detail}" if self.detail else self.path

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.kind.value, "detail": self.detail, "text": self.text}


@dataclass(frozen=True)
class ComponentPlan:
    """A component of an affected pipeline, with the image the bot would build or reuse."""

    component: Component
    image: str | None
    content_hash: str | None
    rebuild: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.component.name,
            "path": self.component.path,
            "shared": self.component.shared,
            "image": self.image,
            "rebuild": self.rebuild,
        }


class PipelineChange(enum.Enum):
    """What the change did to the pipeline as a whole."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


@dataclass(frozen=True)
class PipelinePlan:
    """An affected pipeline: why, and which images must be (re)built."""

    name: str
    change: PipelineChange
    reasons: tuple[Reason, ...]
    components: tuple[ComponentPlan, ...] = ()
    # The pipeline file (relative to the repository root) and function, for other tools.
    file: str | None = None
    function: str | None = None

    @property
    def images_to_build(self) -> tuple[ComponentPlan, ...]:
        return tuple(c for c in self.components if c.rebuild and c.image)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "function": self.function,
            "change": self.change.value,
            "reasons": [r.to_json() for r in self.reasons],
            "components": [c.to_json() for c in self.components],
        }


@dataclass(frozen=True)
class Plan:
    """Every pipeline a change between two revisions affects, sorted by name."""

    base: str
    head: str | None
    pipelines: tuple[PipelinePlan, ...] = field(default_factory=tuple)
    # Problems that do not stop the plan but make it less exact (a COPY source that is missing).
    warnings: tuple[str, ...] = ()

    def get(self, name: str) -> PipelinePlan | None:
        return next((p for p in self.pipelines if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "pipelines": [p.to_json() for p in self.pipelines],
            "warnings": list(self.warnings),
        }


class ParameterType(enum.Enum):
    """A pipeline input's type, normalised across the kfp v1, v2-in-1.8 and v2 formats."""

    STRING = "string"
    INTEGER = "integer"
    DOUBLE = "double"
    BOOLEAN = "boolean"
    LIST = "list"
    STRUCT = "struct"
    ARTIFACT = "artifact"


@dataclass(frozen=True)
class PipelineInput:
    """A declared input of a compiled pipeline."""

    name: str
    type: ParameterType
    optional: bool
    default: Any = None
