"""Content hashes and tags of component images.

An image is named by what goes into it, not by the commit it was built at: the hash covers every
file its Dockerfile copies (by git blob id) and the build-context mode. A push that does not touch
a component's inputs gives the same tag, so the image built before is reused instead of rebuilt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from pipeline_registry.dockerfile import ImageContext
from pipeline_registry.graph import RepoGraph
from pipeline_registry.models import Component, ComponentPlan
from pipeline_registry.repo_config import BuildContext

TAG_PREFIX = "content-"


def content_hash(files: Iterable[tuple[str, str]], mode: BuildContext) -> str:
    """sha256 over the sorted (context-relative path, blob id) pairs and the build-context mode."""
    digest = hashlib.sha256(f"build-context:{mode.value}\n".encode())
    for path, blob in sorted(files):
        digest.update(path.encode("utf-8", errors="surrogateescape") + b"\0" + blob.encode() + b"\n")
    return digest.hexdigest()


def image_tag(hash_: str) -> str:
    """The image tag for a content hash: `content-<first 16 hex digits>`."""
    return f"{TAG_PREFIX}{hash_[:16]}"


def component_hash(graph: RepoGraph, component: Component) -> str | None:
    """The content hash of a component's image in this snapshot (None without a Dockerfile).

    Equal to `content_hash` of the (context-relative path, blob id) pairs of
    `graph.image_inputs(component)`, built from what each `COPY` source selects, encoded once per
    snapshot: thousands of images copy one `utils/`, whose lines are selected and encoded once.
    """
    known = graph.hashes.get(component.key)
    if known is not None or component.key in graph.hashes:
        return known
    context = graph.image_context(component)
    result: str | None = None
    if context is not None and component.builds_image:
        lines = dict(_source_lines(graph, context, None))
        for source in context.sources:
            lines.update(_source_lines(graph, context, source.source))
        digest = hashlib.sha256(f"build-context:{graph.config.build_context.value}\n".encode())
        digest.update(b"".join(line for _, line in sorted(lines.values())))
        result = digest.hexdigest()
    graph.hashes[component.key] = result
    return result


_Lines = tuple[tuple[str, tuple[str, bytes]], ...]


def _source_lines(graph: RepoGraph, context: ImageContext, source: str | None) -> _Lines:
    """path -> (context-relative path, its `content_hash` line) of the image inputs one `COPY`
    source selects (None: the Dockerfile and its ignore file), memoised per snapshot."""
    key = (context.context, source, context.dockerignore_file if source is not None else context.dockerfile)
    known = graph.hash_lines.get(key)
    if known is not None:
        return known
    if source is None:  # the Dockerfile is always an input; its ignore file unless `ignore` drops it
        paths = [context.dockerfile] + [p for p in (context.dockerignore_file,) if p and not graph.ignored(p)]
    else:
        selected = graph.selected(context.context, source)
        paths = [p for p in selected if not graph.ignored(p)] if context.dockerignore is None and not context.context \
            else [p for p in selected if not context.excluded(p) and not graph.ignored(p)]
    lines = []
    for path in paths:
        blob = graph.snapshot.digest(path)
        if blob is not None:
            relative = context.relative(path) or path
            line = relative.encode("utf-8", errors="surrogateescape") + b"\0" + blob.encode() + b"\n"
            lines.append((path, (relative, line)))
    found = graph.hash_lines[key] = tuple(lines)
    return found


def image_ref(component: Component, hash_: str | None) -> str | None:
    """`<image_repository>:content-<hash>` (None for components without an image)."""
    if hash_ is None or component.image_repository is None:
        return None
    return f"{component.image_repository}:{image_tag(hash_)}"


def component_plan(component: Component, head: RepoGraph, base: RepoGraph | None, *,
                   unchanged: bool = False, inputs_changed: bool = False) -> ComponentPlan:
    """The image of `component` at head, rebuilt when no identical image existed at base.

    `unchanged` is the caller's knowledge that no input of the image changed under the same
    configuration: the base image is then the same one and need not be hashed. `inputs_changed`
    is its knowledge that a changed file whose blob differs on the two sides is an input of the
    image: with the same files, configuration and build description at base (so the same input
    paths), the base hash then differs without being computed.
    """
    hash_ = component_hash(head, component)
    image = image_ref(component, hash_)
    if image is None:
        return ComponentPlan(component=component, image=None, content_hash=None, rebuild=False)
    before = base.component_at(component.key) if base is not None else None
    if unchanged and before is not None and before.image_repository == component.image_repository \
            and before.dockerfile is not None:
        return ComponentPlan(component=component, image=image, content_hash=hash_, rebuild=False)
    if inputs_changed and base is not None and before == component and _same_input_paths(head, base, component):
        return ComponentPlan(component=component, image=image, content_hash=hash_, rebuild=True)
    base_image = image_ref(before, component_hash(base, before)) if before is not None and base is not None else None
    return ComponentPlan(component=component, image=image, content_hash=hash_, rebuild=base_image != image)


def _same_input_paths(head: RepoGraph, base: RepoGraph, component: Component) -> bool:
    """True when the image takes in the same paths on both sides: one side shares the other's
    layout (same files and configuration), the build context is the same object (same Dockerfile
    and ignore file) and the files that decide what is global (never ignored) are the same."""
    if head.edited_from(base) is None or head.compile_env_files != base.compile_env_files:
        return False
    context = head.image_context(component)
    return context is not None and context is base.image_context(component)
