"""Pipelines that `.kfp-bot.yaml` declares with `pipeline_files`, for layouts unlike the template's.

Each entry matches pipeline files by a glob (or names one file); every `@dsl.pipeline` function
of a matched file is a pipeline unless the entry chooses one, and the naming rule turns file and
function into a pipeline name. A configuration that finds nothing says so: a glob matching no
file, files defining no pipeline function, a chosen function that is not defined, two pipelines
with one name and an override naming no pipeline are `ConfigError`s naming the key and its line.
Pipeline functions are found statically (decorators read from the text, or with `ast` where the
text is not plain enough: `decorated`), never by running the file.
"""

from __future__ import annotations

import ast
import posixpath
import re
from dataclasses import dataclass

from pipeline_registry.cache import DigestCache
from pipeline_registry.decorated import scan_pipeline_functions
from pipeline_registry.globs import clean_pattern, glob_regex
from pipeline_registry.layout_config import NAME_PATTERN, PipelineSource
from pipeline_registry.models import Pipeline
from pipeline_registry.repo_config import RepoConfig
from pipeline_registry.snapshot import Snapshot, parse_many

SETTINGS_NAMES = ("{stem}.settings.yaml", "settings.yaml", "settings.yml")
_FUNCTIONS: DigestCache[tuple[str, ...]] = DigestCache("pipeline_functions")
_MENTION = re.compile(rb"\bpipeline\b")


@dataclass(frozen=True)
class Declared:
    """What `pipeline_files` found: the pipelines, and the files examined to find them."""

    pipelines: dict[str, Pipeline]
    examined: tuple[str, ...]


def pipeline_functions(text: bytes) -> tuple[str, ...]:
    """Names of the top-level functions of a Python source decorated with `@...pipeline`, in order."""
    if not _MENTION.search(text):
        return ()
    scanned = scan_pipeline_functions(text)  # the text read without a syntax tree, where that is exact
    if scanned is not None:
        return scanned
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    return tuple(node.name for node in tree.body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and any(_is_pipeline_decorator(d) for d in node.decorator_list))


def cached_functions(digest: str, text: bytes) -> tuple[str, ...]:
    """`pipeline_functions` memoised on the file's blob id."""
    return _FUNCTIONS.get_or_compute(digest, lambda: pipeline_functions(text))


def known_functions(digest: str) -> tuple[str, ...] | None:
    """The pipeline functions of a file parsed before (None when it has not been: read it)."""
    return _FUNCTIONS.get(digest)


def _is_pipeline_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Attribute):
        return target.attr == "pipeline"
    return isinstance(target, ast.Name) and target.id == "pipeline"


def excluded(path: str, patterns: tuple[str, ...]) -> bool:
    """True when a pattern matches `path`: one without `/` matches the file name anywhere."""
    name = posixpath.basename(path)
    for pattern in patterns:
        cleaned = clean_pattern(pattern)
        if cleaned and glob_regex(cleaned).match(path if "/" in cleaned else name):
            return True
    return False


def matching_files(paths: frozenset[str], source: PipelineSource, exclude: tuple[str, ...]) -> list[str]:
    """The Python files an entry matches, minus the excluded ones, sorted."""
    if source.file is not None:
        return [source.file] if source.file in paths else []
    regex = glob_regex(clean_pattern(source.pattern))
    return sorted(p for p in paths if p.endswith(".py") and regex.fullmatch(p)
                  and not excluded(p, (*source.exclude, *exclude)))


def discover_declared(snapshot: Snapshot, config: RepoConfig) -> Declared:
    """Every pipeline `pipeline_files` declares, by name (sorted); `ConfigError` when one finds nothing."""
    paths = snapshot.paths()
    matched = [matching_files(paths, source, config.exclude) for source in config.pipeline_files]
    examined = sorted({path for files in matched for path in files})
    functions = _functions(snapshot, examined)
    found: dict[str, Pipeline] = {}
    where: dict[str, int] = {}
    for index, (source, files) in enumerate(zip(config.pipeline_files, matched, strict=True)):
        if not files:
            what = "does not exist" if source.file is not None else "matches no Python file"
            raise config.error(f"'{source.pattern}' {what}", "pipeline_files", index, source.key,
                               hint=_no_match_hint(source, paths))
        entry = 0
        for path in files:
            chosen = _chosen(functions.get(path, ()), source, path, config, index)
            for function in chosen:
                name = pipeline_name(source, path, function, several=len(chosen) > 1)
                if not NAME_PATTERN.match(name):
                    raise config.error(f"the name '{name}' given to {path} ({function}) is not a valid "
                                       f"pipeline name", "pipeline_files", index, "name",
                                       hint="use letters, digits, '.', '_' and '-' (choose another naming rule)")
                if name in found:
                    other = found[name]
                    raise config.error(f"two pipelines are named '{name}': {other.pipeline_file} "
                                       f"({other.function}) and {path} ({function})", "pipeline_files", index,
                                       "name", hint="use a naming rule that tells them apart, e.g. "
                                                    "name: \"{folder}-{stem}\"")
                found[name] = _pipeline(name, path, function, source, paths, several=len(chosen) > 1)
                where[name] = index
                entry += 1
        if entry == 0:
            raise config.error(f"'{source.pattern}' matches {len(files)} file(s) but none defines a "
                               f"@dsl.pipeline function" + (f" named '{source.function}'" if source.function else ""),
                               "pipeline_files", index, source.key,
                               hint="point it at the files that define the pipelines")
    for name in config.pipelines:
        if name not in found:
            raise config.error(f"no pipeline is named '{name}'", "pipelines", name,
                               hint=f"pipelines found: {', '.join(sorted(found)) or 'none'}")
    return Declared({name: found[name] for name in sorted(found)}, tuple(examined))


def pipeline_name(source: PipelineSource, path: str, function: str, *, several: bool) -> str:
    """The name the entry's naming rule gives to `function` of the file `path`."""
    folder = posixpath.dirname(path)
    values = {"stem": posixpath.splitext(posixpath.basename(path))[0], "folder": posixpath.basename(folder) or "root",
              "function": function, "path": folder.replace("/", "-") or "root"}
    rule = source.name
    name = values[rule] if rule in values else rule.format(**values)
    if several and not source.names_function():
        name = f"{name}-{function}"
    return name


def _functions(snapshot: Snapshot, files: list[str]) -> dict[str, tuple[str, ...]]:
    return parse_many(snapshot, files, _FUNCTIONS, pipeline_functions)


def _chosen(functions: tuple[str, ...], source: PipelineSource, path: str, config: RepoConfig,
            index: int) -> tuple[str, ...]:
    if source.function is None:
        return functions
    if source.function in functions:
        return (source.function,)
    if source.file is not None:
        defined = ", ".join(functions) if functions else "none"
        raise config.error(f"{path} defines no @dsl.pipeline function '{source.function}'",
                           "pipeline_files", index, "function", hint=f"pipeline functions in {path}: {defined}")
    return ()


def _pipeline(name: str, path: str, function: str, source: PipelineSource, paths: frozenset[str], *,
              several: bool) -> Pipeline:
    folder = posixpath.dirname(path)
    stem = posixpath.splitext(posixpath.basename(path))[0]
    if source.settings is not None:
        candidates = [source.settings.format(stem=stem, folder=posixpath.basename(folder), function=function,
                                             path=folder, name=name)]
    else:
        candidates = [posixpath.join(folder, f.format(stem=stem)) for f in SETTINGS_NAMES]
        if several:
            candidates.insert(0, posixpath.join(folder, f"{stem}.{function}.settings.yaml"))
    settings = next((c for c in candidates if c in paths), None)
    return Pipeline(name=name, path=folder, pipeline_file=path, settings_file=settings,
                    function=function, owns_folder=False, settings_default=candidates[0])


def _no_match_hint(source: PipelineSource, paths: frozenset[str]) -> str:
    top = source.pattern.split("/", 1)[0]
    if "/" in source.pattern and not any(p.startswith(f"{top}/") for p in paths):
        return f"there is no folder '{top}' in the repository"
    return "check the pattern: '*' stays within one folder, '**' crosses folders"
