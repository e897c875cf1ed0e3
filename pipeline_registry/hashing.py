"""Content hashes and tags of component images.

An image is named by what goes into it, not by the commit it was built at: the hash covers every
file its Dockerfile copies (by git blob id) and the build-context mode. A push that does not touch
a component's inputs gives the same tag, so the image built before is reused instead of rebuilt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

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
    """The content hash of a component's image in this snapshot (None without a Dockerfile)."""
    known = graph.hashes.get(component.key)
    if known is not None or component.key in graph.hashes:
        return known
    context = graph.image_context(component)
    result: str | None = None
    if context is not None and component.builds_image:
        pairs = []
        for path in graph.image_inputs(component):
            blob = graph.snapshot.digest(path)
            if blob is not None:
                pairs.append((context.relative(path) or path, blob))
        result = content_hash(pairs, graph.config.build_context)
    graph.hashes[component.key] = result
    return result


def image_ref(component: Component, hash_: str | None) -> str | None:
    """`<image_repository>:content-<hash>` (None for components without an image)."""
    if hash_ is None or component.image_repository is None:
        return None
    return f"{component.image_repository}:{image_tag(hash_)}"


def component_plan(component: Component, head: RepoGraph, base: RepoGraph | None, *,
                   unchanged: bool = False) -> ComponentPlan:
    """The image of `component` at head, rebuilt when no identical image existed at base.

    `unchanged` is the caller's knowledge that no input of the image changed under the same
    configuration: the base image is then the same one and need not be hashed.
    """
    hash_ = component_hash(head, component)
    image = image_ref(component, hash_)
    if image is None:
        return ComponentPlan(component=component, image=None, content_hash=None, rebuild=False)
    before = base.component_at(component.key) if base is not None else None
    if unchanged and before is not None and before.image_repository == component.image_repository \
            and before.dockerfile is not None:
        return ComponentPlan(component=component, image=image, content_hash=hash_, rebuild=False)
    base_image = image_ref(before, component_hash(base, before)) if before is not None and base is not None else None
    return ComponentPlan(component=component, image=image, content_hash=hash_, rebuild=base_image != image)
