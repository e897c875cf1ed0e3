"""Images named inline in pipeline code (`image="…/data-quality:latest"`) and the Dockerfiles that build them.

Repositories outside the template's layout rarely keep a `component.yaml` per image: a
lightweight component says `@dsl.component(base_image="…/trainer:latest")`, a container component
returns `dsl.ContainerSpec(image="…")`. `images:` in `.kfp-bot.yaml` maps such an image name to
the Dockerfile (and build context) that builds it; for layouts declared with `pipeline_files`,
an image whose last path segment is the name of exactly one Dockerfile's folder is found without
configuration. Such an image is a component of every pipeline whose file, or a repository module
that file imports, names it: a change to the Dockerfile's inputs rebuilds it and reaches them,
and the built image replaces the name when compiling.
"""

from __future__ import annotations

import posixpath
import re

from pipeline_registry.cache import DigestCache
from pipeline_registry.models import Component
from pipeline_registry.repo_config import BuildContext, RepoConfig

_IMAGE_ARG = re.compile(rb"""\b(?:base_)?image\s*=\s*[rbuRBU]?["']([A-Za-z0-9][^"'\s{}]*)["']""")
# A string literal that is an image reference of a registry (`gcr.io/p/x:1`, `localhost:5000/x`),
# wherever it stands (`IMAGE = "…"` in a module the pipeline imports, a default argument).
_REGISTRY_LITERAL = re.compile(rb"""["']((?:[a-z0-9-]+\.)+[a-z0-9-]+(?::\d+)?/[A-Za-z0-9._/-]+"""
                               rb"""(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?)["']""")
_NAMES: DigestCache[frozenset[str]] = DigestCache("inline_image_names")
DOCKERFILE = "Dockerfile"


def image_name(reference: str) -> str:
    """An image reference without its tag or digest (`reg/a/b:1.0@sha256:…` -> `reg/a/b`)."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def named_images(text: bytes) -> frozenset[str]:
    """Image names in a Python source: `image=` / `base_image=` string literals, and string
    literals that are registry image references."""
    found = [m.group(1) for m in _IMAGE_ARG.finditer(text)] + [m.group(1) for m in _REGISTRY_LITERAL.finditer(text)]
    return frozenset(image_name(raw.decode("utf-8", "replace")) for raw in found)


def is_named(digest: str) -> bool:
    """True when the image names of this blob are known already."""
    return _NAMES.get(digest) is not None


def cached_named_images(digest: str, text: bytes) -> frozenset[str]:
    """`named_images` memoised on the file's blob id."""
    return _NAMES.get_or_compute(digest, lambda: named_images(text))


def reference_pattern(name: str) -> re.Pattern[str]:
    """Matches `name` with any tag or digest, as a whole string literal's content."""
    return re.compile(r"(?<=[\"'])" + re.escape(name) + r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?(?=[\"'])")


def configured_images(config: RepoConfig, paths: frozenset[str]) -> dict[str, Component]:
    """Image name -> its image component, from `images:`; `ConfigError` for a Dockerfile that does not exist."""
    found: dict[str, Component] = {}
    for name, source in config.images.items():
        if source.dockerfile not in paths:
            raise config.error(f"Dockerfile '{source.dockerfile}' does not exist", "images", name, "dockerfile",
                               hint="give the Dockerfile's path from the repository root")
        context = None if source.context is None else ("" if source.context == "." else source.context)
        found[name] = image_component(name, source.dockerfile, config, context)
    return found


def detected_images(used: set[str], dockerfiles: list[str], config: RepoConfig) -> dict[str, Component]:
    """Image name -> image component for used names whose last segment names one Dockerfile's folder."""
    by_folder: dict[str, list[str]] = {}
    for dockerfile in dockerfiles:
        folder = posixpath.basename(posixpath.dirname(dockerfile))
        by_folder.setdefault(folder, []).append(dockerfile)
    found: dict[str, Component] = {}
    for name in sorted(used):
        matches = by_folder.get(name.rsplit("/", 1)[-1], [])
        if len(matches) == 1 and name not in config.images:
            found[name] = image_component(name, matches[0], config, None)
    return found


def image_component(name: str, dockerfile: str, config: RepoConfig, context: str | None) -> Component:
    """The component that builds image `name` from `dockerfile` (context: given, else by `build_context`)."""
    folder = posixpath.dirname(dockerfile)
    if context is None:
        context = "" if config.build_context is BuildContext.REPOSITORY else folder
    return Component(name=name.rsplit("/", 1)[-1], path=folder, shared=True, dockerfile=dockerfile,
                     image_repository=name, build_context=context, inline=True)


def missing_copy_warnings(component: Component, sources: tuple, sorted_paths: tuple[str, ...],
                          context: str, selected) -> list[str]:
    """A warning per `COPY` source that matches nothing in the build context, saying where it exists."""
    warnings = []
    folder = component.path
    other = folder if context == "" else ""
    for source in sources:
        if not source.source or selected(sorted_paths, context, source.source):
            continue
        where = f"'{context}'" if context else "the repository root"
        text = (f"{component.dockerfile}:{source.line}: {source.instruction} source '{source.source}' does not exist "
                f"in the build context ({where}): the image of '{component.name}' would not be rebuilt when it changes")
        if other != context and selected(sorted_paths, other, source.source):
            key = "component" if other else "repository"
            text += f"; it exists relative to {'the component folder' if other else 'the repository root'}: " \
                    f"set build_context: {key} in .kfp-bot.yaml"
            if component.inline:
                text += f" (or images.{component.image_repository}.context: {other or '.'})"
        warnings.append(text)
    return warnings
