"""The dependency rules: which pipelines a set of changed files reaches in one snapshot, and why.

1. a file in the pipeline's own folder;
2. a file in a component folder the pipeline file loads from elsewhere (shared `components/`);
3. a file a component's Dockerfile copies into its image (own and loaded components);
4. a repository Python module the pipeline file or component code imports, transitively;
5. a global file (`.kfp-bot.yaml`, `global_files`, the compile environment's files).

Files matching `ignore` reach nothing. The work done follows the change: only the components hit
by a change are looked up in pipeline files, only the modules that changed are followed back
through the import graph.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline_registry.dockerfile import select
from pipeline_registry.graph import RepoGraph
from pipeline_registry.models import INLINE_PREFIX, ReasonKind
from pipeline_registry.tree_index import source_scope

ReasonMap = dict[tuple[str, ReasonKind], str]
Hit = tuple[str, ReasonKind, str]


@dataclass(frozen=True)
class Impact:
    """What a change reaches in one snapshot."""

    pipelines: dict[str, ReasonMap] = field(default_factory=dict)
    # Component folders with a changed image input: the only images whose content hash can differ.
    images: frozenset[str] = frozenset()


def affected_pipelines(graph: RepoGraph, changed: Iterable[str]) -> Impact:
    """Pipeline name -> {(changed path, rule): detail} for every pipeline the change reaches."""
    relevant = [path for path in sorted(set(changed)) if not graph.ignored(path)]
    result: dict[str, ReasonMap] = defaultdict(dict)
    if not relevant:
        return Impact()

    def add(name: str, path: str, kind: ReasonKind, detail: str) -> None:
        pipeline = graph.pipelines[name]
        if kind is ReasonKind.PYTHON_IMPORT and (path in pipeline.own_files or (
                pipeline.owns_folder and path.startswith(f"{pipeline.path}/"))):
            return  # already explained by the pipeline-folder rule
        result[name].setdefault((path, kind), detail)

    for path in relevant:
        why = graph.global_reason(path)
        if why:
            for name in graph.pipelines:
                add(name, path, ReasonKind.GLOBAL_FILE, why)
        for name in graph.pipelines_of(path):
            add(name, path, ReasonKind.PIPELINE_FOLDER, _folder_detail(graph, name, path))
        for name in graph.project_of(path):
            add(name, path, ReasonKind.GLOBAL_FILE, f"declares the project of {graph.pipelines[name].pipeline_file}")

    hits: dict[str, list[Hit]] = defaultdict(list)
    for path in relevant:
        folder = graph.component_of(path)
        if folder:
            hits[folder].append((path, ReasonKind.SHARED_COMPONENT, ""))
    image_hits = _image_hits(graph, relevant)
    for folder, found in image_hits.items():
        hits[folder].extend(found)
    for names, folder, hit in _import_hits(graph, relevant):
        for name in names:
            add(name, *hit)
        if folder is not None:
            hits[folder].append(hit)

    for folder in sorted(hits):
        owner = graph.owner.get(folder)
        if owner:
            for path, kind, detail in hits[folder]:
                if kind is not ReasonKind.SHARED_COMPONENT:
                    add(owner, path, kind, detail)
    for key in sorted(k for k in hits if k.startswith(INLINE_PREFIX)):
        found = hits.pop(key)
        for name in graph.image_users(key):
            for path, kind, detail in found:
                add(name, path, kind, detail)
    if hits:
        for name, loaded in sorted(graph.loaders(set(hits)).items()):
            pipeline_file = graph.pipelines[name].pipeline_file
            for folder, how in sorted(loaded.items()):
                if graph.owner.get(folder) == name:
                    continue
                for path, kind, detail in hits[folder]:
                    if kind is ReasonKind.SHARED_COMPONENT:
                        detail = f"{graph.describe_component(folder)}, loaded by {pipeline_file} ({how})"
                    add(name, path, kind, detail)
    return Impact(dict(result), frozenset(image_hits))


def _folder_detail(graph: RepoGraph, name: str, path: str) -> str:
    pipeline = graph.pipelines[name]
    if path == pipeline.pipeline_file:
        return f"pipeline file of '{name}'"
    if path == pipeline.settings_file:
        return f"settings of pipeline '{name}'"
    component = next((c for c in pipeline.components if path.startswith(f"{c.path}/")), None)
    if component is not None:
        return f"in component '{component.name}' of pipeline '{name}'"
    return f"in the folder of pipeline '{name}'"


def _image_hits(graph: RepoGraph, relevant: list[str]) -> dict[str, list[Hit]]:
    """Component folder -> changed files that go into its image."""
    candidates = graph.image_candidates(relevant)
    graph.preload_dockerfiles(candidates)
    changed = set(relevant)
    # A source selects only paths at or under its scope (`source_scope`): one whose scope holds no
    # changed path (a component's own folder, when `utils/` changed) is not matched at all.
    folders = {""}
    for path in relevant:
        while path and path not in folders:
            folders.add(path)
            path = posixpath.dirname(path)
    selected: dict[tuple[str, str], list[str]] = {}
    found: dict[str, list[Hit]] = {}
    for component in sorted(candidates, key=lambda c: c.key):
        context = graph.image_context(component)
        if context is None:
            continue
        matched: dict[str, str] = {}
        if context.dockerfile in changed:
            matched[context.dockerfile] = f"Dockerfile of component '{component.name}'"
        if context.dockerignore_file in changed:
            matched[context.dockerignore_file] = f"docker ignore file of component '{component.name}'"
        for source in context.sources:
            if source_scope(context.context, source.source) not in folders:
                continue
            key = (context.context, source.source)
            if key not in selected:
                selected[key] = select(relevant, context.context, source.source)
            for path in selected[key]:
                if path not in matched and not context.excluded(path):
                    matched[path] = f"copied into image of component '{component.name}' by " \
                                    f"{context.dockerfile}:{source.line}"
        if matched:
            found[component.key] = [(p, ReasonKind.IMAGE_INPUT, d) for p, d in sorted(matched.items())]
    return found


def _import_hits(graph: RepoGraph, relevant: list[str]) -> list[tuple[tuple[str, ...], str | None, Hit]]:
    """(pipelines whose file imports it, component folder whose code imports it | None, hit)."""
    modules = [p for p in relevant if p.endswith(".py")]
    if not modules:
        return []
    found: list[tuple[tuple[str, ...], str | None, Hit]] = []
    for importer, targets in sorted(graph.imports.importers(modules).items()):
        names = graph.pipeline_files.get(importer, ())
        folder = graph.component_of(importer)
        for target, hop in sorted(targets.items()):
            if target == importer or (not names and folder is None):
                continue
            detail = f"imported by {importer}" + ("" if hop == target else f" via {hop}")
            in_folder = folder is not None and target.startswith(f"{folder}/")
            found.append((names, None if in_folder else folder, (target, ReasonKind.PYTHON_IMPORT, detail)))
    return found
