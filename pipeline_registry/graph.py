"""The dependency facts of one snapshot: what each pipeline is made of, computed lazily.

`RepoGraph` answers the questions the dependency rules ask: which pipeline folder a file is in,
which files a component's image copies, which components a pipeline file loads, which files a
Python file imports, which files are global. Every answer is computed on first use and kept, and
every parse is memoised on the blob id, so a plan only pays for what its change touches.
The answers are layered: the layout (`repo_layout`), the images (`repo_images`), then here the
components each pipeline file loads and the facts kept by tree id for later plans.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from pipeline_registry.component_loads import (
    NO_LOADS,
    LoadFacts,
    Mentions,
    cached_loads,
    known_loads,
    known_mentions,
    remember_mentions,
)
from pipeline_registry.declared import cached_functions, known_functions
from pipeline_registry.load_resolution import resolve_loads, unresolved_loads
from pipeline_registry.models import INLINE_PREFIX, Component, Pipeline
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig, load_repo_config
from pipeline_registry.repo_images import RepoImages
from pipeline_registry.snapshot import Snapshot, read_many
from pipeline_registry.tree_index import LoadIndex, TreeFacts, build_load_index, config_key

# What a tree's facts keep besides the indexes (`facts`, `adopt`).
_KEPT = ("sorted_paths", "pipelines", "shared", "component_dirs", "declared_files", "entry_files")


def load_config(snapshot: Snapshot) -> RepoConfig:
    """The validated `.kfp-bot.yaml` of a snapshot (defaults without one); `ConfigError` if malformed."""
    return load_repo_config(snapshot.read(CONFIG_FILE))


class RepoGraph(RepoImages):
    """Pipelines, components and their dependencies in one snapshot under one configuration."""

    def __init__(self, snapshot: Snapshot, config: RepoConfig) -> None:
        super().__init__(snapshot, config)
        self._loads: dict[str, dict[str, str]] = {}

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

    def facts(self, tree: str) -> TreeFacts:
        """This tree's facts for later plans (computing whatever was not asked for yet)."""
        layout = {name: getattr(self, name) for name in _KEPT}
        entries = dict(self.snapshot.entries())  # type: ignore[attr-defined]  # a commit's listing
        return TreeFacts(tree=tree, config=config_key(self.config), entries=entries, layout=layout,
                         copy_index=self.copy_index, load_index=self.load_index, installed=self.installed,
                         imports=self.imports.known())

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
