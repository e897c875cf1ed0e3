"""Putting freshly built images into component specs before a pipeline is compiled.

Seed pipeline files load their components from `component.yaml` files whose
`implementation.container.image` names the image; the seed's CI rewrites that field to the
image it just built, then compiles. The bot does the same, in a scratch copy of the
repository only. Compiled component specs (kfp 2 IR YAML loaded with
`load_component_from_file`) carry their images under `deploymentSpec.executors` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath

import yaml

from deploy.errors import CompileError
from pipeline_registry.inline_images import reference_pattern
from pipeline_registry.models import INLINE_PREFIX

SPEC_NAMES = ("component.yaml", "component.yml")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML was built with it


def substitute_images(root: Path, images: Mapping[str, str]) -> tuple[str, ...]:
    """Rewrite the image of each component folder's spec under `root`; return the specs changed.

    `images` maps repository-relative component folders to full image references; an
    `image:<name>` key is an image named inline in Python code, replaced in every Python file
    that names it (with any tag).
    """
    inline = {key[len(INLINE_PREFIX):]: ref for key, ref in images.items() if key.startswith(INLINE_PREFIX)}
    changed = list(substitute_inline(root, inline)) if inline else []
    for folder, image in sorted(images.items()):
        if folder.startswith(INLINE_PREFIX):
            continue
        spec = _spec_file(root, folder)
        rel = spec.relative_to(root).as_posix()
        try:
            documents = list(yaml.load_all(spec.read_text(encoding="utf-8"), Loader=_LOADER))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise CompileError(rel, f"cannot read the component spec to set its image: {exc}",
                               hint="fix the YAML syntax") from None
        if not documents or not isinstance(documents[0], dict) or not _set_image(documents[0], image):
            raise CompileError(rel, "has no container image to replace "
                               "(expected implementation.container.image or deploymentSpec.executors)",
                               hint="a component with a Dockerfile needs a container implementation in its spec")
        if spec.is_symlink():  # a link would carry the edit out of the scratch copy
            spec.unlink()
        spec.write_text(yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True), encoding="utf-8")
        changed.append(rel)
    return tuple(changed)


def substitute_inline(root: Path, images: Mapping[str, str]) -> tuple[str, ...]:
    """Replace inline image names (any tag) by the built references in the Python files under `root`."""
    patterns = [(reference_pattern(name), name.encode(), ref) for name, ref in sorted(images.items())]
    changed = []
    for path in sorted(root.rglob("*.py")):
        if path.is_symlink() or not path.is_file():
            continue  # a link would carry the edit out of the scratch copy
        data = path.read_bytes()
        if not any(needle in data for _, needle, _ in patterns):
            continue
        text = data.decode("utf-8", "surrogateescape")
        for pattern, _, ref in patterns:
            text = pattern.sub(ref, text)
        path.write_bytes(text.encode("utf-8", "surrogateescape"))
        changed.append(path.relative_to(root).as_posix())
    return tuple(changed)


def _spec_file(root: Path, folder: str) -> Path:
    relative = PurePosixPath(folder.strip("/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise CompileError(folder, "is not a component folder inside the repository")
    for name in SPEC_NAMES:
        candidate = root.joinpath(*relative.parts, name)
        if candidate.is_file():
            if not candidate.parent.resolve().is_relative_to(root.resolve()):
                raise CompileError(str(relative), "is a link to a folder outside the repository",
                                   hint="component folders must be real folders of the repository")
            return candidate
    raise CompileError(f"{relative}/component.yaml", "does not exist: cannot put the built image into the pipeline",
                       hint="add a component.yaml whose implementation.container.image the bot can replace")


def _set_image(spec: dict, image: str) -> bool:
    container = ((spec.get("implementation") or {}).get("container"))
    if isinstance(container, dict):
        container["image"] = image
        return True
    executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
    found = False
    for executor in executors.values():
        if isinstance(executor, dict) and isinstance(executor.get("container"), dict):
            executor["container"]["image"] = image
            found = True
    return found
