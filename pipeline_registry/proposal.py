"""`kfp-bot init`: a starting `.kfp-bot.yaml` proposed by looking at a repository.

It finds the files defining `@dsl.pipeline` functions (tests, hidden and virtual-environment
folders left out) and folds them into a few globs, each checked by the same discovery the bot
uses, so the proposal finds exactly those files; the folders the pipeline files import their own
packages from (`compile.python_path`); the inline images and the Dockerfiles that build them, with
the build context their `COPY` sources need; and the compile pins. Nothing is executed.
"""

from __future__ import annotations

import ast
import posixpath
from dataclasses import dataclass

import yaml

from pipeline_registry.compile_env import CompileEnvironment, pipeline_environment
from pipeline_registry.declared import cached_functions, discover_declared
from pipeline_registry.discovery import discover_pipelines
from pipeline_registry.errors import ConfigError
from pipeline_registry.graph import RepoGraph
from pipeline_registry.import_resolution import package_dirs
from pipeline_registry.python_path import installed_packages, package_roots
from pipeline_registry.repo_config import RepoConfig, load_repo_config
from pipeline_registry.snapshot import Snapshot, read_many

_SKIPPED_DIRS = ("test", "tests", "node_modules", "site-packages", "venv", "build", "dist")
TEST_PATTERNS = ("*_test.py", "test_*.py")


@dataclass(frozen=True)
class Proposal:
    """The proposed `.kfp-bot.yaml` text (empty when none is needed) and what was found."""

    text: str
    findings: tuple[str, ...]


def propose(snapshot: Snapshot) -> Proposal:
    """A configuration for the repository of `snapshot`, and one line per thing found."""
    paths = snapshot.paths()
    try:
        template = discover_pipelines(snapshot, RepoConfig())
    except ConfigError:
        template = {}
    if template:
        return Proposal("", (f"the template's layout: {len(template)} pipeline(s) in pipelines/<name>/ "
                             f"({', '.join(template)}); no configuration is needed",))
    candidates = sorted(p for p in paths if p.endswith(".py") and not _skipped(p))
    texts = read_many(snapshot, candidates)
    files = sorted(p for p in candidates if cached_functions(snapshot.digest(p) or "", texts.get(p, b"")))
    if not files:
        return Proposal("", ("no file defines a @dsl.pipeline function: nothing to propose",))
    findings = [f"{len(files)} pipeline file(s): {', '.join(files)}"]
    config: dict = {"pipeline_files": _sources(snapshot, files)}
    tests = [p for p in paths if p.endswith(".py") and any(_matches_test(p, t) for t in TEST_PATTERNS)]
    if tests:
        config["exclude"] = list(TEST_PATTERNS)
    installed = package_roots(installed_packages(paths, lambda wanted: read_many(snapshot, wanted), snapshot.digest),
                              package_dirs(paths))
    python_path = _python_path(files, texts, paths, frozenset(installed))
    if python_path:
        config["compile"] = {"python_path": python_path}
        findings.append(f"imports of the repository's own packages from {', '.join(python_path)}")
    draft = load_repo_config(yaml.safe_dump(config, sort_keys=False))
    graph = RepoGraph(snapshot, draft)
    findings.extend(_images(graph, config))
    findings.extend(_pins(graph))
    return Proposal(yaml.safe_dump(config, sort_keys=False, width=120), tuple(findings))


def _pins(graph: RepoGraph) -> list[str]:
    """The compile pins each pipeline gets: its nearest folder pinning kfp, else the root's."""
    users: dict[CompileEnvironment, list[str]] = {}
    for name, pipeline in graph.pipelines.items():
        users.setdefault(pipeline_environment(graph.snapshot.read, graph.config, pipeline), []).append(name)
    found = []
    for env, names in users.items():
        which = "" if len(users) == 1 else f" for {', '.join(names)}"
        found.append(f"compile pins: {', '.join(env.requirements)} (from {', '.join(env.source_files)}){which}"
                     if env.requirements else f"no kfp pin{which}: the bot's own kfp 2 compiles")
    return found


def _skipped(path: str) -> bool:
    parts = path.split("/")
    return any(p.startswith(".") or p in _SKIPPED_DIRS or p.endswith(".egg-info") for p in parts[:-1]) \
        or any(_matches_test(path, t) for t in TEST_PATTERNS) or parts[-1] in ("setup.py", "conftest.py")


def _matches_test(path: str, pattern: str) -> bool:
    name = posixpath.basename(path)
    return name.endswith("_test.py") if pattern == "*_test.py" else name.startswith("test_")


def _sources(snapshot: Snapshot, files: list[str]) -> list:
    """Globs covering `files` (one per depth and top folder), each verified to find exactly its files."""
    groups: dict[tuple[int, str], list[str]] = {}
    for path in files:
        parts = path.split("/")
        groups.setdefault((len(parts), parts[0] if len(parts) > 1 else ""), []).append(path)
    sources: list = []
    for _, members in sorted(groups.items()):
        split = [m.split("/") for m in members]
        segments = [column[0] if len(set(column)) == 1 else "*" for column in zip(*split, strict=False)]
        if segments[-1] == "*":
            segments[-1] = "*.py"
        glob = "/".join(segments)
        same_name = not segments[-1].startswith("*")
        folders = [s[-2] if len(s) > 1 else "root" for s in split]
        entry: dict | str = glob
        if same_name:
            entry = {"glob": glob, "name": "folder" if len(set(folders)) == len(folders) else "{path}"}
        sources.append(entry)
    config = load_repo_config(yaml.safe_dump({"pipeline_files": sources, "exclude": list(TEST_PATTERNS)}))
    try:
        found = {p.pipeline_file for p in discover_declared(snapshot, config).pipelines.values()}
    except ConfigError:
        found = set()
    if found != set(files):  # the globs catch too much (or names collide): list the files one by one
        return [{"file": path, "name": "{path}-{stem}"} for path in files]
    return sources


def _is_registry_image(name: str) -> bool:
    """`gcr.io/p/x`, `localhost:5000/x`: built and pushed by someone, unlike `python` or `library/x`."""
    first = name.split("/", 1)[0]
    return "/" in name and ("." in first or ":" in first or first == "localhost")


def _top_level_imports(text: bytes) -> list[str]:
    """Top-level absolute imports of a module (imports inside component functions run in the container)."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            names.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.append(node.module.split(".")[0])
    return names


def _python_path(files: list[str], texts: dict[str, bytes], paths: frozenset[str],
                 installed: frozenset[str] = frozenset()) -> list[str]:
    """Folders holding the packages pipeline files import that resolve neither from the root nor beside them
    (packages the repository installs from itself are found without: `installed`)."""
    dirs = package_dirs(paths)
    roots: list[str] = []
    for path in files:
        folder = posixpath.dirname(path)
        for top in _top_level_imports(texts.get(path, b"")):
            # A folder without __init__.py (`pipelines/` of a sub-project) is no package to import.
            if any(f"{b}{top}/__init__.py" in paths or f"{b}{top}.py" in paths for b in ("", f"{folder}/")):
                continue
            for found in sorted(d for d in dirs if d.endswith(f"/{top}") and f"{d}/__init__.py" in paths):
                root = posixpath.dirname(found)
                if root not in roots and root not in installed:
                    roots.append(root)
    folded = []
    for root in roots:
        parts = root.split("/")
        if len(parts) == 3 and parts[2] == "src" and sum(r.startswith(f"{parts[0]}/") and r.endswith("/src")
                                                         for r in roots) > 1:
            root = f"{parts[0]}/*/src"
        if root not in folded:
            folded.append(root)
    return folded


def _images(graph: RepoGraph, config: dict) -> list[str]:
    """Inline images found: Dockerfiles matched by folder name, a root Dockerfile for the only
    other one, and the build context their COPY sources need."""
    found: list[str] = []
    used = {name for pipeline in graph.pipelines for name in graph.used_images(pipeline) if _is_registry_image(name)}
    detected = graph.inline_images
    unmatched = sorted(used - set(detected))
    if "Dockerfile" in graph.paths and len(unmatched) == 1:
        config["images"] = {unmatched[0]: {"dockerfile": "Dockerfile"}}
        found.append(f"image {unmatched[0]} is built from the root Dockerfile")
        unmatched = []
    for name, component in sorted(detected.items()):
        found.append(f"image {name} is built from {component.dockerfile}")
    if detected and all(graph.copy_warnings(c) for c in detected.values()):
        config["build_context"] = "component"
        found.append("the Dockerfiles copy paths relative to their own folder: build_context: component")
    found.extend(f"image {name} is named in pipeline code but no Dockerfile was found for it" for name in unmatched)
    return found
