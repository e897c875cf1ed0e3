"""What goes into each component's image, for the dependency rules of one snapshot.

`RepoImages` adds to the layout (`repo_layout`) how docker builds each component (the `COPY`
sources of its Dockerfile, its build context and `.dockerignore`), the files each image takes in,
the components a changed path may reach (`tree_index.CopyIndex`), and the images pipeline files
name inline. A Dockerfile is parsed once per blob id, and the other side of a change serves the
images whose files it has unchanged.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from functools import cached_property

from pipeline_registry.dockerfile import (
    ImageContext,
    cached_copy_sources,
    context_dir,
    dockerignore_path,
    is_parsed,
    parse_into_cache,
    select,
)
from pipeline_registry.globs import IgnoreRules
from pipeline_registry.inline_images import (
    DOCKERFILE,
    cached_named_images,
    configured_images,
    detected_images,
    is_named,
    missing_copy_warnings,
)
from pipeline_registry.models import INLINE_PREFIX, Component
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.repo_layout import RepoLayout
from pipeline_registry.snapshot import Snapshot, read_many
from pipeline_registry.tree_index import CopyIndex, build_copy_index


class RepoImages(RepoLayout):
    """The images of one snapshot's components: how they are built and what they take in."""

    def __init__(self, snapshot: Snapshot, config: RepoConfig) -> None:
        super().__init__(snapshot, config)
        self._contexts: dict[str, ImageContext | None] = {}
        self._inputs: dict[str, frozenset[str]] = {}
        self._used: dict[str, frozenset[str]] = {}
        # Content hash of each component's image, by folder (filled by `hashing.component_hash`).
        self.hashes: dict[str, str | None] = {}
        # What each `COPY` source puts into a content hash (`hashing._source_lines`).
        self.hash_lines: dict[tuple[str, str | None, str | None], tuple[tuple[str, tuple[str, bytes]], ...]] = {}

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
