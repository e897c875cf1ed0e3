"""The dependency facts of one snapshot: what each pipeline is made of, computed lazily.

`RepoGraph` answers the questions the dependency rules ask: which pipeline folder a file is in,
which files a component's image copies, which components a pipeline file loads, which files a
Python file imports, which files are global. Every answer is computed on first use and kept, and
every parse is memoised on the blob id, so a plan only pays for what its change touches.
"""

from __future__ import annotations

import bisect
import posixpath
from collections.abc import Iterable
from functools import cached_property

from pipeline_registry.compile_env import compile_environment
from pipeline_registry.component_loads import (
    NO_LOADS,
    LoadFacts,
    Mentions,
    cached_loads,
    known_loads,
    known_mentions,
    remember_mentions,
)
from pipeline_registry.declared import cached_functions, known_functions, matching_files
from pipeline_registry.discovery import SPEC_FILES, discover_pipelines, discover_shared_components
from pipeline_registry.dockerfile import (
    ImageContext,
    cached_copy_sources,
    context_dir,
    dockerignore_path,
    is_parsed,
    parse_into_cache,
    select,
)
from pipeline_registry.errors import ConfigError
from pipeline_registry.globs import GlobSet, IgnoreRules
from pipeline_registry.imports import ImportGraph
from pipeline_registry.inline_images import (
    DOCKERFILE,
    cached_named_images,
    configured_images,
    detected_images,
    is_named,
    missing_copy_warnings,
)
from pipeline_registry.load_resolution import Memo, resolve_loads, unresolved_loads
from pipeline_registry.models import INLINE_PREFIX, Component, Pipeline
from pipeline_registry.python_path import declares_packages, expand_folders, installed_packages, package_roots
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig, load_repo_config
from pipeline_registry.snapshot import Snapshot, read_many
from pipeline_registry.tree_index import CopyIndex, LoadIndex, TreeFacts, build_copy_index, build_load_index, config_key

_SPEC_SUFFIXES = tuple(f"/{name}" for name in SPEC_FILES)
NESTED_PROJECT_FILES = ("pyproject.toml", "poetry.lock", "Pipfile", "Pipfile.lock", "setup.cfg", "setup.py")
# What a tree's facts keep besides the indexes (`facts`, `adopt`).
_KEPT = ("sorted_paths", "pipelines", "shared", "component_dirs", "declared_files", "entry_files")
# Properties that depend only on the file listing and the configuration.
_STRUCTURE = ("sorted_paths", "pipelines", "shared", "components", "owner", "component_dirs", "pipeline_files",
              "own_files", "declared_files", "entry_files")


def load_config(snapshot: Snapshot) -> RepoConfig:
    """The validated `.kfp-bot.yaml` of a snapshot (defaults without one); `ConfigError` if malformed."""
    return load_repo_config(snapshot.read(CONFIG_FILE))


class RepoGraph:
    """Pipelines, components and their dependencies in one snapshot under one configuration."""

    def __init__(self, snapshot: Snapshot, config: RepoConfig) -> None:
        self.snapshot = snapshot
        self.config = config
        self._ignore = GlobSet(config.ignore)
        self._global = GlobSet(config.global_files)
        self._contexts: dict[str, ImageContext | None] = {}
        self._inputs: dict[str, frozenset[str]] = {}
        self._loads: dict[str, dict[str, str]] = {}
        self._used: dict[str, frozenset[str]] = {}
        # Content hash of each component's image, by folder (filled by `hashing.component_hash`).
        self.hashes: dict[str, str | None] = {}
        # What each `COPY` source puts into a content hash (`hashing._source_lines`).
        self.hash_lines: dict[tuple[str, str | None, str | None], tuple[tuple[str, tuple[str, bytes]], ...]] = {}
        self._ignored: dict[str, bool] = {}
        self._twin: RepoGraph | None = None
        # The paths whose contents differ from the twin's, when known (the diff of a plan).
        self._edited: frozenset[str] | None = None
        self._adopted: TreeFacts | None = None
        self._selected: dict[tuple[str, str], list[str]] = {}
        self._names: Memo = {}  # what loaded component names resolve to (`load_resolution`)

    # -- facts kept by tree id (`tree_index`) -----------------------------------------------------
    def adopt(self, facts: TreeFacts | None) -> bool:
        """Start from the facts an earlier plan kept for this tree, when made under this configuration."""
        if facts is None or facts.config != config_key(self.config):
            return False
        self.__dict__.update(facts.layout)
        self.__dict__["copy_index"] = facts.copy_index
        self.__dict__["load_index"] = facts.load_index
        self.__dict__["installed"] = facts.installed
        self._adopted = facts
        return True

    @property
    def uses_own_layout(self) -> bool:
        """True unless the layout and indexes were shared from the other side of a change."""
        return self._twin is None

    def facts(self, tree: str) -> TreeFacts:
        """This tree's facts for later plans (computing whatever was not asked for yet)."""
        layout = {name: getattr(self, name) for name in _KEPT}
        entries = dict(self.snapshot.entries())  # type: ignore[attr-defined]  # a commit's listing
        return TreeFacts(tree=tree, config=config_key(self.config), entries=entries, layout=layout,
                         copy_index=self.copy_index, load_index=self.load_index, installed=self.installed,
                         imports=self.imports.known())

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

    def share_structure(self, other: RepoGraph, edited: frozenset[str] | None = None) -> bool:
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

    def edited_from(self, other: RepoGraph) -> frozenset[str] | None:
        """The paths whose contents may differ from `other`'s, when one graph shares the other's
        layout (same files, same configuration) and the change is known; else None."""
        if self._twin is other:
            return self._edited
        if other._twin is self:
            return other._edited
        return None

    def _same_as(self, other: RepoGraph, path: str) -> bool:
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

    # -- images ----------------------------------------------------------------------------------
    def preload_dockerfiles(self, components: Iterable[Component] | None = None) -> None:
        """Parse the Dockerfiles (of every component by default) not parsed before, in one stream."""
        chosen = self.components.values() if components is None else components
        # A Dockerfile the twin has too is described by the twin's context (`image_context`).
        missing = [c.dockerfile for c in chosen if c.dockerfile and c.key not in self._contexts
                   and not self._same_file(c.dockerfile)]
        digests = {path: self.snapshot.digest(path) for path in missing}
        unread = {p: d for p, d in digests.items() if d is not None and not is_parsed(d)}
        parsed: set[str] = set()
        for path, text in read_many(self.snapshot, unread).items():
            if unread[path] not in parsed:  # one content at several paths is parsed once
                parse_into_cache(unread[path], text)
                parsed.add(unread[path])

    def image_context(self, component: Component) -> ImageContext | None:
        """How docker builds the component (None without a Dockerfile)."""
        if component.key in self._contexts:
            return self._contexts[component.key]
        twin = self._twin
        if twin is not None and component.dockerfile and self._same_file(component.dockerfile):
            theirs = twin.image_context(component)
            if theirs is None or theirs.dockerignore_file is None or self._same_file(theirs.dockerignore_file):
                self._contexts[component.key] = theirs
                return theirs
        context: ImageContext | None = None
        digest = self.snapshot.digest(component.dockerfile) if component.dockerfile else None
        if component.dockerfile and digest is not None:
            text = b"" if is_parsed(digest) else (self.snapshot.read(component.dockerfile) or b"")
            sources = cached_copy_sources(digest, text)
            folder = context_dir(component, self.config)
            ignore_file = dockerignore_path(component.dockerfile, folder, self.paths)
            rules = IgnoreRules((self.snapshot.read(ignore_file) or b"").decode(errors="replace")) \
                if ignore_file else None
            context = ImageContext(component, component.dockerfile, folder, sources, ignore_file, rules)
        self._contexts[component.key] = context
        return context

    @cached_property
    def copy_index(self) -> CopyIndex:
        """Components by the paths their images copy (see `CopyIndex`); the twin's when the layout
        is shared."""
        if self._twin is not None and self._edited is not None:
            # The twin's serves as it is: a component whose Dockerfile or ignore file the change
            # edits is a candidate through `direct`, and its sources are matched as they are here.
            return self._twin.copy_index
        self.preload_dockerfiles()
        return build_copy_index({c.key: self.image_context(c) for c in self.components.values()})

    def image_candidates(self, changed: Iterable[str]) -> list[Component]:
        """Components whose image may take in a changed path (their sources still to be matched),
        then every image named inline."""
        keys = self.copy_index.candidates(changed)
        found = [self.components[k] for k in sorted(keys) if k in self.components]
        return [*found, *self.inline_images.values()]

    def selected(self, context: str, pattern: str) -> list[str]:
        """The files a `COPY` source (relative to `context`) selects, memoised: many images share one."""
        key = (context, pattern)
        found = self._selected.get(key)
        if found is None:
            found = self._selected[key] = select(self.sorted_paths, context, pattern)
        return found

    def image_inputs(self, component: Component) -> frozenset[str]:
        """Every file that goes into the component's image, minus ignored ones."""
        known = self._inputs.get(component.key)
        if known is None:
            context = self.image_context(component)
            found = context.inputs(self.sorted_paths, self._selected) if context else frozenset()
            known = self._inputs[component.key] = frozenset(
                p for p in found if p in self.paths and (p == component.dockerfile or not self.ignored(p)))
        return known

    # -- components a pipeline loads ----------------------------------------------------------
    def default_search_paths(self, pipeline: Pipeline) -> tuple[str, ...]:
        """Where component names resolve when a pipeline file names no search paths."""
        return (pipeline.path, self.config.components_dir)

    def loads(self, name: str) -> dict[str, str]:
        """Component folders the pipeline file loads -> how it loads them."""
        known = self._loads.get(name)
        pipeline = self.pipelines[name]
        if known is None and self._twin is not None and pipeline.pipeline_file and \
                self._same_file(pipeline.pipeline_file):
            known = self._loads[name] = self._twin.loads(name)
        if known is None:
            facts = self._facts(pipeline)
            known = self._loads[name] = resolve_loads(facts, pipeline.pipeline_file or pipeline.path,
                                                      self.default_search_paths(pipeline), self.paths, self.is_dir,
                                                      self._names) \
                if facts.loads_anything else {}
        return known

    def pipeline_function(self, name: str) -> str | None:
        """The pipeline's function: the declared one, else the file's only `@dsl.pipeline` function
        (the template's files define one), so `plan --json` names it for other tools."""
        pipeline = self.pipelines[name]
        digest = self.snapshot.digest(pipeline.pipeline_file) if pipeline.pipeline_file else None
        if pipeline.function or digest is None or pipeline.pipeline_file is None:
            return pipeline.function
        known = known_functions(digest)  # read only when never parsed: a blob is read at most once
        found = known if known is not None else \
            cached_functions(digest, self.snapshot.read(pipeline.pipeline_file) or b"")
        return found[0] if len(found) == 1 else None

    def unresolved_loads(self, name: str) -> tuple[str, ...]:
        """The pipeline file's component loads that resolve nowhere here (`file:line: ...` each)."""
        pipeline = self.pipelines[name]
        facts = self._facts(pipeline)
        if not facts.sites or not pipeline.pipeline_file:
            return ()
        return unresolved_loads(facts, pipeline.pipeline_file, self.default_search_paths(pipeline), self.paths,
                                self.is_dir, self._names)

    def _facts(self, pipeline: Pipeline) -> LoadFacts:
        if not pipeline.pipeline_file:
            return NO_LOADS
        digest = self.snapshot.digest(pipeline.pipeline_file)
        if digest is None:
            return NO_LOADS
        known = known_loads(digest)
        if known is not None:
            return known
        return cached_loads(digest, self.snapshot.read(pipeline.pipeline_file) or b"")

    def _mentions(self, names: Iterable[str]) -> dict[str, Mentions | None]:
        """What each pipeline's file spells out (read in one stream where not parsed before)."""
        digests = {name: self.snapshot.digest(f) if (f := self.pipelines[name].pipeline_file) else None
                   for name in names}
        found = {name: known_mentions(d) if d is not None else None for name, d in digests.items()}
        unread = {self.pipelines[n].pipeline_file or "": d for n, d in digests.items()
                  if d is not None and found[n] is None}
        texts = read_many(self.snapshot, unread)
        made: dict[str, Mentions] = {}  # one content in several files is read once
        for name, digest in digests.items():
            if digest is not None and found[name] is None:
                if digest not in made:
                    made[digest] = remember_mentions(digest, texts.get(self.pipelines[name].pipeline_file or "", b""))
                found[name] = made[digest]
        return found

    @cached_property
    def load_index(self) -> LoadIndex:
        """Pipelines by the words their files spell (see `LoadIndex`); from the twin's, updated for
        edited pipeline files, when the layout is shared."""
        twin = self._twin
        if twin is not None and self._edited is not None:
            names = {n for path in self._edited for n in self.pipeline_files.get(path, ())}
            if not names:
                return twin.load_index
            return twin.load_index.replacing(twin._mentions(names), self._mentions(names))
        return build_load_index(self._mentions(self.pipelines))

    def loaders(self, folders: set[str]) -> dict[str, dict[str, str]]:
        """Pipelines that load any of `folders` from outside their own folder: pipeline -> {folder: how}.

        Only the pipelines whose files spell the folders' names (see `LoadIndex`) are resolved.
        """
        names = sorted(self.load_index.candidates(folders, ("", self.config.components_dir)))
        digests = {n: self.snapshot.digest(f) if (f := self.pipelines[n].pipeline_file) else None for n in names}
        unread = {self.pipelines[n].pipeline_file or "": d for n, d in digests.items()
                  if d is not None and known_loads(d) is None}
        for path, text in read_many(self.snapshot, unread).items():
            cached_loads(unread[path], text)
        found = {name: self.loads(name) for name in names if digests[name] is not None}
        return {name: hits for name, loaded in found.items()
                if (hits := {f: how for f, how in loaded.items() if f in folders and self.owner.get(f) != name})}

    def components_of(self, name: str) -> tuple[Component, ...]:
        """The pipeline's own components, the discovered components it loads from elsewhere, then
        the images it names inline."""
        pipeline = self.pipelines[name]
        own = {c.path for c in pipeline.components}
        loaded = [self.components[f] for f in sorted(self.loads(name)) if f in self.components and f not in own]
        inline = [self.inline_images[image] for image in sorted(self.used_images(name)) if image in self.inline_images] \
            if self.inline_images else []  # no image to name: no need to read what the files name
        return (*pipeline.components, *loaded, *inline)

    def component_at(self, key: str) -> Component | None:
        """The component known by `key` (a folder, or `image:<name>`)."""
        if key.startswith(INLINE_PREFIX):
            return self.inline_images.get(key[len(INLINE_PREFIX):])
        return self.components.get(key)

    # -- images named inline ------------------------------------------------------------------
    def used_images(self, name: str) -> frozenset[str]:
        """Image names the pipeline's file, or a repository module it imports, gives inline."""
        known = self._used.get(name)
        if known is None:
            pipeline_file = self.pipelines[name].pipeline_file
            files = [pipeline_file, *self.imports.closure([pipeline_file])] if pipeline_file else []
            digests = {path: self.snapshot.digest(path) for path in files}
            texts = read_many(self.snapshot, [p for p, d in digests.items() if d and not is_named(d)])
            known = self._used[name] = frozenset().union(*(
                cached_named_images(digest, texts.get(path, b"")) for path, digest in digests.items() if digest))
        return known

    @cached_property
    def inline_images(self) -> dict[str, Component]:
        """Image name -> the component building it: `images:` entries, and (for declared layouts)
        names whose last segment is one Dockerfile's folder."""
        found = configured_images(self.config, self.paths)
        if self.config.declares_pipelines:
            used = set().union(*(self.used_images(name) for name in self.pipelines)) - set(found)
            claimed = {c.dockerfile for c in found.values()}
            dockerfiles = [p for p in self.sorted_paths if posixpath.basename(p) == DOCKERFILE and p not in claimed]
            found.update(detected_images(used, dockerfiles, self.config))
        return found

    def copy_warnings(self, component: Component) -> list[str]:
        """A warning per `COPY` source of the component's Dockerfile that its build context lacks."""
        context = self.image_context(component)
        if context is None:
            return []
        return missing_copy_warnings(component, context.sources, self.sorted_paths, context.context,
                                     lambda _, folder, pattern: self.selected(folder, pattern))

    def image_users(self, key: str) -> tuple[str, ...]:
        """Pipelines that use the inline image known by `key` (`image:<name>`)."""
        image = key[len(INLINE_PREFIX):]
        return tuple(name for name in self.pipelines if image in self.used_images(name))

    def describe_component(self, folder: str) -> str:
        """`shared component 'notify'`, `component 'train' of pipeline 'x'`, or the folder."""
        component = self.components.get(folder)
        if component is None:
            return f"component folder {folder}"
        if component.shared:
            return f"shared component '{component.name}'"
        return f"component '{component.name}' of pipeline '{self.owner.get(folder, '?')}'"

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
