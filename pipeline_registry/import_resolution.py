"""Which repository files one import statement loads, read from the list of files alone.

A module is searched from the repository root and from the importing file's folder, and resolves
to `a/b.py` or `a/b/__init__.py` plus the `__init__.py` of every parent package; a statement
whose top-level name is no repository module (`numpy`, `os`) is dropped after two set lookups.
`imports.ImportGraph` follows these answers from file to file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence

from pipeline_registry.import_statements import ImportStmt


def package_dirs(paths: Iterable[str]) -> frozenset[str]:
    """Every folder that contains a Python file somewhere below it ("" is the root)."""
    dirs: set[str] = {""}
    for path in paths:
        if not path.endswith(".py"):
            continue
        folder = posixpath.dirname(path)
        while folder not in dirs:
            dirs.add(folder)
            folder = posixpath.dirname(folder)
    return frozenset(dirs)


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def resolve_import(stmt: ImportStmt, importer: str, paths: frozenset[str], dirs: frozenset[str],
                   roots: tuple[str, ...] = (), folder: str | None = None) -> set[str]:
    """The repository files one import statement of `importer` loads (empty for third-party modules).

    Absolute imports are searched from the repository root, the `roots` (the repository's
    import path: `compile.python_path`, packages it installs from itself) and the file's folder
    (`folder`, when the caller knows it).
    """
    if folder is None:
        folder = posixpath.dirname(importer)
    found: set[str] = set()
    parts = [p for p in stmt.module.split(".") if p]
    if stmt.level:
        package = folder
        for _ in range(stmt.level - 1):
            package = posixpath.dirname(package)
        walk = package
        while _join(walk, "__init__.py") in paths:
            found.add(_join(walk, "__init__.py"))
            if not walk:
                break
            walk = posixpath.dirname(walk)
        bases = [package]
    else:
        bases = list(dict.fromkeys(["", *roots, folder]))
    for base in bases:
        resolve_from(base, parts, stmt.names, paths, dirs, found)
    found.discard(importer)
    return found


def resolve_from_roots(stmt: ImportStmt, paths: frozenset[str], dirs: frozenset[str],
                       roots: tuple[str, ...]) -> tuple[frozenset[str], list[str]]:
    """(what an absolute statement finds from the root and the import roots, its module's parts):
    the same for every file that makes the statement."""
    parts = [p for p in stmt.module.split(".") if p]
    found: set[str] = set()
    for base in dict.fromkeys(["", *roots]):
        resolve_from(base, parts, stmt.names, paths, dirs, found)
    return frozenset(found), parts


def resolve_from(base: str, parts: Sequence[str], names: Sequence[str], paths: frozenset[str],
                 dirs: frozenset[str], found: set[str]) -> None:
    """Add to `found` the files a module (its dotted name's `parts`) and the `names` imported from
    it resolve to when searched from the folder `base`."""
    current = base
    if parts:
        head = _join(base, parts[0])
        if f"{head}.py" not in paths and head not in dirs:
            return  # not a repository module from this folder: stdlib or third-party
    for part in parts:
        current = _join(current, part)
        is_dir = current in dirs
        if f"{current}.py" in paths:
            found.add(f"{current}.py")
            if not is_dir:
                return  # names after a module file are attributes, not submodules
        if not is_dir:
            return
        if f"{current}/__init__.py" in paths:
            found.add(f"{current}/__init__.py")
    for name in names:
        if name == "*":
            continue
        target = _join(current, name)
        if f"{target}.py" in paths:
            found.add(f"{target}.py")
        elif f"{target}/__init__.py" in paths:
            found.add(f"{target}/__init__.py")
