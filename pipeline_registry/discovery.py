"""Finding the pipelines and components of a repository from its file listing alone.

The seed layout needs no configuration: a pipeline is a direct subfolder of `pipelines/` with a
pipeline file (`<name>.py`, `<name>-pipeline.py`, `pipeline.py`, or the file `.kfp-bot.yaml`
names) or a `settings.yaml`; a component is a direct subfolder (of a pipeline, or of
`components/`) with a `component.yaml` or a `Dockerfile`. Only paths are looked at, so discovery
of a few hundred pipelines costs one pass over the listing.
"""

from __future__ import annotations

import posixpath

from pipeline_registry.declared import discover_declared
from pipeline_registry.errors import ConfigError
from pipeline_registry.models import Component, Pipeline
from pipeline_registry.repo_config import CONFIG_FILE, RepoConfig
from pipeline_registry.snapshot import Snapshot

SPEC_FILES = ("component.yaml", "component.yml")
DOCKERFILE = "Dockerfile"
SETTINGS_FILES = ("settings.yaml", "settings.yml")


def discover_pipelines(snapshot: Snapshot, config: RepoConfig) -> dict[str, Pipeline]:
    """Every pipeline of the snapshot, by name (sorted): the ones `pipeline_files` declares,
    else the template's `pipelines_dir/<name>/` folders. `ConfigError` when an override names
    no pipeline."""
    if config.declares_pipelines:
        return discover_declared(snapshot, config).pipelines
    pipelines = _template_pipelines(snapshot, config)
    for name in config.pipelines:
        if name not in pipelines:
            raise config.error(f"no pipeline is named '{name}'", "pipelines", name,
                               hint=f"pipelines found in {config.pipelines_dir}/: "
                                    f"{', '.join(pipelines) or 'none'}")
    return pipelines


def _template_pipelines(snapshot: Snapshot, config: RepoConfig) -> dict[str, Pipeline]:
    paths = snapshot.paths()
    files, subfolders = _tree(paths, config.pipelines_dir)
    pipelines: dict[str, Pipeline] = {}
    for name in sorted(files.keys() | subfolders.keys()):
        folder = f"{config.pipelines_dir}/{name}"
        direct = files.get(name, set())
        pipeline_file = _pipeline_file(name, folder, direct, paths, config)
        settings = next((f"{folder}/{s}" for s in SETTINGS_FILES if s in direct), None)
        if pipeline_file is None and settings is None:
            continue
        components = tuple(
            component
            for sub, inner in sorted(subfolders.get(name, {}).items())
            if (component := _component(sub, f"{folder}/{sub}", inner, config, pipeline=name)) is not None
        )
        pipelines[name] = Pipeline(name=name, path=folder, pipeline_file=pipeline_file,
                                   settings_file=settings, components=components)
    return pipelines


def discover_shared_components(snapshot: Snapshot, config: RepoConfig) -> dict[str, Component]:
    """Every shared component, by name (sorted): a folder under `components_dir` with a component
    spec or a Dockerfile, at any depth (`components/misc/container_components/x/`) but not inside
    another component. A nested one is named by its path below `components_dir` when its folder
    name is taken."""
    top = f"{config.components_dir}/"
    by_folder: dict[str, set[str]] = {}
    for path in snapshot.paths():
        if path.startswith(top):
            folder, _, name = path.rpartition("/")
            if name in SPEC_FILES or name == DOCKERFILE:
                by_folder.setdefault(folder, set()).add(name)
    shared: dict[str, Component] = {}
    taken: list[str] = []
    for folder in sorted(by_folder, key=lambda f: (f.count("/"), f)):
        if folder + "/" == top or any(folder.startswith(f"{outer}/") for outer in taken):
            continue
        relative = folder[len(top):]
        name = relative.rsplit("/", 1)[-1]
        if name in shared:
            name = relative.replace("/", "-")
        component = _component(name, folder, by_folder[folder], config, pipeline=None)
        if component is not None:
            shared[name] = component
            taken.append(folder)
    return dict(sorted(shared.items()))


def pipeline_file_candidates(name: str) -> tuple[str, ...]:
    """File names tried, in order, for the pipeline file of pipeline folder `name`."""
    underscored = name.replace("-", "_")
    names = [f"{name}.py", f"{name}-pipeline.py", f"{underscored}.py", f"{underscored}_pipeline.py"]
    if name.endswith("-pipeline"):
        names.append(f"{name[: -len('-pipeline')]}.py")
    names.append("pipeline.py")
    return tuple(dict.fromkeys(names))


def _pipeline_file(name: str, folder: str, direct: set[str], paths: frozenset[str],
                   config: RepoConfig) -> str | None:
    configured = config.override(name).pipeline_file
    if configured:
        for candidate in (posixpath.normpath(f"{folder}/{configured}"), posixpath.normpath(configured)):
            if candidate in paths:
                return candidate
        raise ConfigError(CONFIG_FILE, f"file '{configured}' does not exist in {folder} or at the repository root",
                          field=f"pipelines.{name}.pipeline_file",
                          hint=f"name a file inside {folder}/ or remove the key")
    return next((f"{folder}/{c}" for c in pipeline_file_candidates(name) if c in direct), None)


def _component(name: str, folder: str, files: set[str], config: RepoConfig, *,
               pipeline: str | None) -> Component | None:
    spec = next((f"{folder}/{s}" for s in SPEC_FILES if s in files), None)
    dockerfile = f"{folder}/{DOCKERFILE}" if DOCKERFILE in files else None
    if spec is None and dockerfile is None:
        return None
    repository = None
    if dockerfile is not None:
        image = name if pipeline is None else f"{pipeline}-{name}"
        repository = f"{config.image_registry}/{image}"
    return Component(name=name, path=folder, shared=pipeline is None, spec_file=spec,
                     dockerfile=dockerfile, image_repository=repository)


def _tree(paths: frozenset[str], top: str) -> tuple[dict[str, set[str]], dict[str, dict[str, set[str]]]]:
    """Files directly inside each `top/<name>/`, and directly inside each `top/<name>/<sub>/`."""
    prefix = f"{top}/"
    cut = len(prefix)
    files: dict[str, set[str]] = {}
    subfolders: dict[str, dict[str, set[str]]] = {}
    for path in paths:
        if not path.startswith(prefix):
            continue
        parts = path[cut:].split("/", 3)
        if len(parts) == 2:
            files.setdefault(parts[0], set()).add(parts[1])
        elif len(parts) == 3:
            subfolders.setdefault(parts[0], {}).setdefault(parts[1], set()).add(parts[2])
    return files, subfolders
