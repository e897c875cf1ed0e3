"""A repository at one revision: its snapshot, validated configuration and pipelines.

The CLI and the service ask the same questions about one revision (which pipelines exist, their
settings, their components, the images to compile with); `Repository` answers them from one
snapshot and keeps the analysis, so asking twice costs nothing.
"""

from __future__ import annotations

from pathlib import Path

from pipeline_registry.errors import ComponentLoadError, UnknownPipelineError
from pipeline_registry.graph import RepoGraph, load_config
from pipeline_registry.hashing import component_hash, image_ref
from pipeline_registry.models import Component, Pipeline
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.settings import PipelineSettings, parse_settings
from pipeline_registry.snapshot import Snapshot, open_snapshot


class Repository:
    """A snapshot, its `.kfp-bot.yaml` and the pipelines discovered in it."""

    def __init__(self, snapshot: Snapshot, config: RepoConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self.graph = RepoGraph(snapshot, config)

    @classmethod
    def open(cls, repo_dir: Path, revision: str | None = None) -> Repository:
        """The repository at `revision` (None: the working tree).

        Raises `RepositoryError` (not a repository, unknown revision) or `ConfigError`
        (malformed `.kfp-bot.yaml`).
        """
        snapshot = open_snapshot(Path(repo_dir), revision)
        try:
            return cls(snapshot, load_config(snapshot))
        except BaseException:
            snapshot.close()
            raise

    @property
    def root(self) -> Path:
        """The repository's top folder."""
        return self.snapshot.root

    @property
    def revision(self) -> str | None:
        """The resolved commit SHA (None for the working tree)."""
        return self.snapshot.revision

    def pipelines(self) -> dict[str, Pipeline]:
        """Every pipeline, by name (sorted)."""
        return dict(self.graph.pipelines)

    def shared_components(self) -> dict[str, Component]:
        """Every shared component, by name (sorted)."""
        return dict(self.graph.shared)

    def pipeline(self, name: str) -> Pipeline:
        """One pipeline; `UnknownPipelineError` listing the known ones when there is none."""
        found = self.graph.pipelines.get(name)
        if found is None:
            raise UnknownPipelineError(name, list(self.graph.pipelines))
        return found

    def require_resolved_loads(self, name: str) -> None:
        """`ComponentLoadError` naming each component load of the pipeline file that resolves
        nowhere: compiling would fail on it, or load a component from a path that no longer exists."""
        self.pipeline(name)
        problems = self.graph.unresolved_loads(name)
        if problems:
            raise ComponentLoadError(list(problems))

    def settings(self, name: str) -> PipelineSettings:
        """The pipeline's parsed `settings.yaml` (no parameters when it has none)."""
        pipeline = self.pipeline(name)
        if pipeline.settings_file is None:
            return parse_settings(None, pipeline.settings_path)
        return parse_settings(self.snapshot.read(pipeline.settings_file), pipeline.settings_file)

    def components_of(self, name: str) -> tuple[Component, ...]:
        """The pipeline's own components, then the shared (or other) components it loads."""
        self.pipeline(name)
        return self.graph.components_of(name)

    def component_images(self, name: str) -> dict[str, str]:
        """Component folder (`image:<name>` for an inline image) -> full image reference with its
        content tag, for components with an image."""
        images: dict[str, str] = {}
        for component in self.components_of(name):
            ref = image_ref(component, component_hash(self.graph, component))
            if ref is not None:
                images[component.key] = ref
        return images

    def image_inputs(self, component: Component) -> frozenset[str]:
        """Every repository file that goes into the component's image (Dockerfile included)."""
        return self.graph.image_inputs(component)

    def close(self) -> None:
        """Stop the git process that serves file reads."""
        close = getattr(self.snapshot, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
