"""Which component folders a pipeline file's loads resolve to in one snapshot.

`component_loads` reads what a file loads (`LoadFacts`); here its names and search paths are
looked up among the snapshot's files: a store name in a search folder, a file from the repository
root or the pipeline file's folder. A "dynamic" load counts every component in the search paths
as loaded. Loads that resolve nowhere are named, so `plan` can warn and `check` refuse them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable
from typing import Any

from pipeline_registry.component_loads import LoadFacts


def _join(base: str, name: str) -> str:
    """`posixpath.join(base, name)` for a folder and a name, without its generality (a hot path)."""
    if not base or name.startswith("/"):
        return name
    return base + name if base.endswith("/") else f"{base}/{name}"


def _normalise(path: str) -> str | None:
    if path and "\\" not in path and "." not in path and "//" not in path and path[0] != "/" and path[-1] != "/":
        return path  # already normal (the usual `pipelines/x` or `train`): normpath would return it as it is
    cleaned = posixpath.normpath(path.replace("\\", "/"))
    if cleaned.startswith("/") or cleaned == ".." or cleaned.startswith("../"):
        return None
    return "" if cleaned == "." else cleaned


def _search_folders(facts: LoadFacts, here: str, default_search: Iterable[str],
                    is_dir: Callable[[str], bool]) -> list[str]:
    """The existing folders a `ComponentStore` looks names up in (relative to the root or the file)."""
    search = list(facts.search_paths)
    if facts.unknown_search_paths or not facts.has_store:
        search.extend(default_search)
    folders: list[str] = []
    for entry in search:
        for base in ("", here):
            folder = _normalise(_join(base, entry))
            if folder is not None and folder not in folders and is_dir(folder):
                folders.append(folder)
    return folders


# What loaded names and search paths resolve to, for one set of paths (`_resolve_name`, `_folders`).
Memo = dict[tuple[Any, ...], Any]


def _folders(facts: LoadFacts, here: str, default_search: tuple[str, ...], is_dir: Callable[[str], bool],
             memo: Memo | None) -> list[str]:
    """`_search_folders`, kept in `memo`: thousands of pipelines search the same few folders."""
    if memo is None:
        return _search_folders(facts, here, default_search, is_dir)
    key = (facts.search_paths, facts.unknown_search_paths, facts.has_store, here, default_search)
    known = memo.get(key)
    if known is None:
        known = memo[key] = _search_folders(facts, here, default_search, is_dir)
    return known


def _resolve_name(name: str, folders: list[str], here: str, paths: frozenset[str],
                  memo: Memo | None = None) -> dict[str, str]:
    """Component folders one loaded name resolves to: a store name in a search folder, or a file.

    `memo` keeps the answers for one set of paths: `plan` resolves each pipeline's loads, then
    checks the same names for warnings."""
    if memo is not None:
        key = (name, tuple(folders), here)
        known = memo.get(key)
        if known is None:
            known = memo[key] = _resolve_name(name, folders, here, paths)
        return known
    found: dict[str, str] = {}
    for folder in folders:
        candidate = _normalise(_join(folder, name))
        if candidate is not None and f"{candidate}/component.yaml" in paths:
            found.setdefault(candidate, f'load_component("{name}")')
    for base in ("", here):
        candidate = _normalise(_join(base, name))
        if candidate is not None and candidate in paths:
            found.setdefault(posixpath.dirname(candidate), f'load_component_from_file("{name}")')
    return found


def resolve_loads(facts: LoadFacts, pipeline_file: str, default_search: Iterable[str],
                  paths: frozenset[str], is_dir: Callable[[str], bool], memo: Memo | None = None) -> dict[str, str]:
    """Component folders the facts load, each with how (e.g. `load_component("training")`)."""
    here = posixpath.dirname(pipeline_file)
    folders = _folders(facts, here, tuple(default_search), is_dir, memo)
    found: dict[str, str] = {}
    for name in facts.names:
        for folder, how in _resolve_name(name, folders, here, paths, memo).items():
            found.setdefault(folder, how)
    if facts.dynamic:
        for folder in folders:
            prefix = f"{folder}/" if folder else ""
            for path in paths:
                if path.startswith(prefix) and path.endswith("/component.yaml") and \
                        path.count("/") == prefix.count("/") + 1:
                    found.setdefault(posixpath.dirname(path), f"a load_component call with a computed name, "
                                                              f"searching {folder or '.'}")
    return found


def unresolved_loads(facts: LoadFacts, pipeline_file: str, default_search: Iterable[str],
                     paths: frozenset[str], is_dir: Callable[[str], bool], memo: Memo | None = None) -> tuple[str, ...]:
    """One line per component load that resolves nowhere in the snapshot (`file:line: what`).

    A renamed search path or component folder leaves a load that only fails when the pipeline
    is compiled; naming it here lets `plan` warn and `check` refuse it. Loads whose arguments
    cannot be evaluated, leave the repository or are URLs are not judged.
    """
    here = posixpath.dirname(pipeline_file)
    folders = _folders(facts, here, tuple(default_search), is_dir, memo)
    problems: list[str] = []
    for call, name, line in facts.sites:
        if call == "ComponentStore" or "://" in name or (call == "load_component" and facts.unknown_search_paths):
            continue
        if _resolve_name(name, folders, here, paths, memo):
            continue
        inside = [f for base in ("", here) if (f := _normalise(_join(base, name)))]
        if not inside:
            continue
        if call == "load_component" and facts.has_store:
            missing_search = [(value, at) for kind, value, at in facts.sites if kind == "ComponentStore" and
                              not any(is_dir(f) for base in ("", here)
                                      if (f := _normalise(_join(base, value))) is not None)]
            where = ", ".join(f"'{value}' (line {at})" for value, at in missing_search)
            searched = ", ".join(folders) or "no existing folder"
            why = f"the search path {where} does not exist" if missing_search else \
                f"no {name}/component.yaml in {searched}"
        else:
            why = f"no file {name} from the repository root or {here or 'the root'}"
        problems.append(f'{pipeline_file}:{line}: {call}("{name}") resolves nowhere: {why}')
    return tuple(problems)
