"""What one snapshot holds under one configuration: its files, pipelines and components.

`RepoLayout` answers where a file belongs: which pipeline folder or component it is in, which
files are global (they affect every pipeline) or ignored, and which Python files the entry files
import. Both sides of a change that lists the same files share one layout (`share_structure`), so
a plan discovers it once. `repo_images.RepoImages` and `graph.RepoGraph` build on it.
"""

from __future__ import annotations

import bisect
import posixpath
from functools import cached_property
from typing import Self

from pipeline_registry.compile_env import compile_environment
from pipeline_registry.declared import matching_files
from pipeline_registry.discovery import SPEC_FILES, discover_pipelines, discover_shared_components
from pipeline_registry.errors import ConfigError
from pipeline_registry.globs import GlobSet
from pipeline_registry.imports import ImportGraph
from pipeline_registry.load_resolution import Memo
from pipeline_registry.models import Component, Pipeline
from pipeline_registry.python_path import declares_packages, expand_folders, installed_packages, package_roots
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig
from pipeline_registry.snapshot import Snapshot, read_many
from pipeline_registry.tree_index import TreeFacts

_SPEC_SUFFIXES = tuple(f"/{name}" for name in SPEC_FILES)
NESTED_PROJECT_FILES = ("pyproject.toml", "poetry.lock", "Pipfile", "Pipfile.lock", "setup.cfg", "setup.py")
# Properties that depend only on the file listing and the configuration.
_STRUCTURE = ("sorted_paths", "pipelines", "shared", "components", "owner", "component_dirs", "pipeline_files",
              "own_files", "declared_files", "entry_files")


class RepoLayout:
    """The files, pipelines and components of one snapshot under one configuration."""

    def __init__(self, snapshot: Snapshot, config: RepoConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self._ignore = GlobSet(config.ignore)
        self._global = GlobSet(config.global_files)
        self._ignored: dict[str, bool] = {}
        self._twin: Self | None = None
        # The paths whose contents differ from the twin's, when known (the diff of a plan).
        self._edited: frozenset[str] | None = None
        self._adopted: TreeFacts | None = None  # what an earlier plan kept for this tree (`RepoGraph.adopt`)
        # Memos that depend only on the files, shared with the twin (`share_structure`):
        self._selected: dict[tuple[str, str], list[str]] = {}  # what a `COPY` source selects (`RepoImages.selected`)
        self._names: Memo = {}  # what loaded component names resolve to (`load_resolution`)

    @property
    def uses_own_layout(self) -> bool:
        """True unless the layout and indexes were shared from the other side of a change."""
        return self._twin is None

    # -- what exists -------------------------------------------------------------------------
    @cached_property
    def paths(self) -> frozenset[str]:
        """Every file of the snapshot."""
        return self.snapshot.paths()

    @cached_property
    def sorted_paths(self) -> tuple[str, ...]:
        """Every file, sorted: folders are contiguous ranges, found by bisection."""
        return tuple(sorted(self.paths))

    def is_dir(self, folder: str) -> bool:
        """True when some file of the snapshot lies inside `folder` ("" is the root)."""
        if not folder:
            return bool(self.paths)
        prefix = f"{folder}/"
        index = bisect.bisect_left(self.sorted_paths, prefix)
        return index < len(self.sorted_paths) and self.sorted_paths[index].startswith(prefix)

    def share_structure(self, other: Self, edited: frozenset[str] | None = None) -> bool:
        """Reuse `other`'s discovery when both snapshots have the same files and configuration.

        A change that only edits files (the usual push) leaves the layout as it was, so one
        side of a plan need not discover it again; with `edited` (the paths whose contents
        differ) the reverse indexes are updated for those paths alone. Returns whether it was shared.
        """
        if self.config != other.config or self.paths != other.paths:
            return False
        if self.config.declares_pipelines and not all(self._same_as(other, p) for p in other.declared_files):
            return False  # pipeline functions are read from the files: an edit may add or remove one
        for name in _STRUCTURE:
            self.__dict__[name] = getattr(other, name)
        # Same files: what a `COPY` source selects and what a component name resolves to are the same.
        self._selected, self._names = other._selected, other._names
        self._twin = other
        self._edited = edited
        return True

    def edited_from(self, other: Self) -> frozenset[str] | None:
        """The paths whose contents may differ from `other`'s, when one graph shares the other's
        layout (same files, same configuration) and the change is known; else None."""
        if self._twin is other:
            return self._edited
        if other._twin is self:
            return other._edited
        return None

    def _same_as(self, other: Self, path: str) -> bool:
        return other.snapshot.digest(path) == self.snapshot.digest(path)

    def _same_file(self, path: str) -> bool:
        """True when the twin graph (same layout) has the same contents at `path`."""
        return self._twin is not None and self._twin.snapshot.digest(path) == self.snapshot.digest(path)

    @cached_property
    def pipelines(self) -> dict[str, Pipeline]:
        """Every pipeline, by name."""
        return discover_pipelines(self.snapshot, self.config)

    @cached_property
    def declared_files(self) -> tuple[str, ...]:
        """The files `pipeline_files` matches (read to find pipeline functions); none for the template."""
        if not self.config.declares_pipelines:
            return ()
        return tuple(sorted({path for source in self.config.pipeline_files
                             for path in matching_files(self.paths, source, self.config.exclude)}))

    def require_pipelines(self) -> None:
        """`ConfigError` when the repository has no pipeline: never a silent pass over nothing."""
        if self.pipelines:
            return
        if self.config.declares_pipelines:  # discovery already named the entry that found nothing
            return
        raise ConfigError(CONFIG_FILE if self.snapshot.digest(CONFIG_FILE) else f"{self.config.pipelines_dir}/",
                          f"no pipeline found: no folder {self.config.pipelines_dir}/<name>/ holds a pipeline "
                          f"file (<name>.py, pipeline.py) or a settings.yaml",
                          hint="declare where the pipelines are with pipeline_files in .kfp-bot.yaml "
                               "(`kfp-bot init` proposes one)")

    @cached_property
    def shared(self) -> dict[str, Component]:
        """Every shared component, by name."""
        return discover_shared_components(self.snapshot, self.config)

    @cached_property
    def components(self) -> dict[str, Component]:
        """Every discovered component (own and shared), by folder."""
        found = {c.path: c for p in self.pipelines.values() for c in p.components}
        found.update((c.path, c) for c in self.shared.values())
        return found

    @cached_property
    def owner(self) -> dict[str, str]:
        """Component folder -> the pipeline it belongs to (shared components have none)."""
        return {c.path: p.name for p in self.pipelines.values() for c in p.components}

    @cached_property
    def component_dirs(self) -> frozenset[str]:
        """Folders that are components: discovered ones and any folder with a component spec."""
        spec_dirs = {p.rsplit("/", 1)[0] for p in self.paths if p.endswith(_SPEC_SUFFIXES)}
        return frozenset(spec_dirs | set(self.components))

    @cached_property
    def pipeline_files(self) -> dict[str, tuple[str, ...]]:
        """Pipeline file -> the pipelines it defines (several when a file defines several)."""
        found: dict[str, list[str]] = {}
        for pipeline in self.pipelines.values():
            if pipeline.pipeline_file:
                found.setdefault(pipeline.pipeline_file, []).append(pipeline.name)
        return {path: tuple(names) for path, names in found.items()}

    @cached_property
    def own_files(self) -> dict[str, tuple[str, ...]]:
        """Pipeline and settings files of declared pipelines -> the pipelines they belong to."""
        found: dict[str, list[str]] = {}
        for pipeline in self.pipelines.values():
            if not pipeline.owns_folder:
                for path in pipeline.own_files:
                    found.setdefault(path, []).append(pipeline.name)
        return {path: tuple(names) for path, names in found.items()}

    def pipelines_of(self, path: str) -> tuple[str, ...]:
        """The pipelines `path` belongs to: inside a template pipeline's folder, or a declared
        pipeline's own file."""
        declared = self.own_files.get(path)
        if declared:
            return declared
        prefix = f"{self.config.pipelines_dir}/"
        if self.config.declares_pipelines or not path.startswith(prefix):
            return ()
        name = path[len(prefix):].split("/", 1)[0]
        return (name,) if name in self.pipelines and path != f"{prefix}{name}" else ()

    def component_of(self, path: str) -> str | None:
        """The innermost component folder containing `path`."""
        folder = posixpath.dirname(path)
        while folder:
            if folder in self.component_dirs:
                return folder
            folder = posixpath.dirname(folder)
        return None

    def describe_component(self, folder: str) -> str:
        """`shared component 'notify'`, `component 'train' of pipeline 'x'`, or the folder."""
        component = self.components.get(folder)
        if component is None:
            return f"component folder {folder}"
        if component.shared:
            return f"shared component '{component.name}'"
        return f"component '{component.name}' of pipeline '{self.owner.get(folder, '?')}'"

    # -- global and ignored files -----------------------------------------------------------------
    @cached_property
    def compile_env_files(self) -> tuple[str, ...]:
        """Files that declare the compile environment (global files)."""
        return compile_environment(self.snapshot.read, self.config).source_files

    def global_reason(self, path: str) -> str | None:
        """Why `path` affects every pipeline, or None when it does not."""
        if path == CONFIG_FILE:
            return "global file (kfp-bot configuration)"
        if path in self.compile_env_files:
            return "global file (declares the compile environment)"
        pattern = self._global.match(path)
        return f"global file (matches global_files pattern '{pattern}')" if pattern else None

    def project_of(self, path: str) -> tuple[str, ...]:
        """Pipelines below the folder of a nested project file (`pipelines/pyproject.toml`,
        `Pipfile`, `requirements*.txt`): the sub-project whose environment it declares."""
        folder, name = posixpath.split(path)
        project_file = name in NESTED_PROJECT_FILES or (name.startswith("requirements") and name.endswith(".txt"))
        if not folder or not project_file:
            return ()
        return tuple(sorted({n for file, names in self.pipeline_files.items()
                             if file.startswith(f"{folder}/") for n in names}))

    def ignored(self, path: str) -> bool:
        """True when `path` matches `ignore` (documentation and the like) and is not global."""
        known = self._ignored.get(path)
        if known is None:
            known = self._ignored[path] = self._ignore.match(path) is not None and self.global_reason(path) is None
        return known

    # -- python imports ------------------------------------------------------------------------
    @cached_property
    def entry_files(self) -> frozenset[str]:
        """Python files whose imports matter: pipeline files and the code of components."""
        return frozenset(self.pipeline_files) | {p for p in self.sorted_paths
                                                 if p.endswith(".py") and self.component_of(p) is not None}

    @cached_property
    def installed(self) -> tuple[str, ...]:
        """Folders of the packages the repository installs from itself."""
        twin = self._twin
        if twin is not None and self._edited is not None and not any(map(declares_packages, self._edited)):
            return twin.installed
        return installed_packages(self.paths, lambda files: read_many(self.snapshot, files), self.snapshot.digest)

    @cached_property
    def imports(self) -> ImportGraph:
        """The import graph of the Python files reachable from the entry files."""
        twin = self._twin.imports if self._twin is not None else None
        graph = ImportGraph(self.snapshot, twin=twin)
        if self._adopted is not None:  # first: the kept folders serve the import roots below
            graph.seed(self._adopted.imports)
        graph.roots = (*expand_folders(self.config.compile.python_path, graph.dirs),
                       *package_roots(self.installed, graph.dirs))
        graph.entry_files = self.entry_files
        graph.edited = self._edited
        return graph
