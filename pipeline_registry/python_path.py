"""Where the repository's own Python packages are imported from, the way the repository runs.

Besides the repository root and the importing file's folder, modules resolve from the folders of
`compile.python_path` (`src`, `pipelines/src`, `components/*/src`) and from the packages the
repository installs from itself (`pip install -e components/x` in a requirements file, a Poetry
or Pipfile path dependency, a PEP 508 `name @ file:` reference): their `src/` folder when they
have one, else their own folder. The same folders go on the import path when compiling, so a
change to a module of an installable package reaches the pipelines that import it.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable, Iterable

from pipeline_registry.cache import DigestCache

_EDITABLE = re.compile(r"^\s*(?:-e|--editable)[\s=]+(\S+)")
_LOCAL = re.compile(r"^\s*(\.{1,2}/\S*)")
_FILE_URL = re.compile(r"@\s*file:(?://)?(\S+)")
PROJECT_FILES = ("pyproject.toml", "Pipfile")
_DECLARING_SUFFIXES = (".txt", *PROJECT_FILES)  # a cheap test before the exact one
_TARGETS: DigestCache[tuple[str, ...]] = DigestCache("installed_targets")
# The last few answers by (declaring file, blob id) pairs: the same files give the same folders.
_RECENT: dict[tuple[tuple[str, str | None], ...], tuple[str, ...]] = {}


def expand_folders(patterns: Iterable[str], dirs: Iterable[str]) -> tuple[str, ...]:
    """The folders of `dirs` each pattern names (`*` within one folder name), in pattern order."""
    known = sorted(dirs)
    found: list[str] = []
    for pattern in patterns:
        depth = pattern.count("/")
        for folder in known:
            if folder and folder.count("/") == depth and fnmatch.fnmatchcase(folder, pattern) \
                    and folder not in found:
                found.append(folder)
    return tuple(found)


def installed_packages(paths: frozenset[str], read_many: Callable[[list[str]], dict[str, bytes]],
                       digest: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
    """Folders of packages the repository installs from itself (`-e components/x`, path dependencies).

    With `digest` (the snapshot's blob ids) each declaring file is read and parsed at most once
    per content: a monorepo has a requirements file per component.
    """
    declaring = sorted(p for p in paths if p.endswith(_DECLARING_SUFFIXES) and _declares(p))
    targets_of: dict[str, tuple[str, ...]] = {}
    digests = {p: digest(p) for p in declaring} if digest is not None else {}
    key = tuple(digests.items()) if digest is not None else None
    if key is not None and key in _RECENT:
        return _RECENT[key]  # both sides of a plan usually declare the same files
    # Files never parsed, grouped by content (a requirements file per component is often the
    # same `numpy` line): each content is read and parsed once.
    missing: dict[tuple[str, bool], list[str]] = {}
    looked_up: dict[str, tuple[str, ...] | None] = {}
    for path in declaring:
        blob = digests.get(path)
        if blob and blob not in looked_up:
            looked_up[blob] = _TARGETS.get(blob)
        known = looked_up[blob] if blob else None
        if known is None:
            missing.setdefault((blob or path, path.endswith(".txt")), []).append(path)
        else:
            targets_of[path] = known
    texts = read_many([group[0] for group in missing.values()])
    for group in missing.values():
        data = texts.get(group[0])
        if data is None:
            continue
        text = data.decode("utf-8", "replace")
        targets = tuple(_from_requirements(text) if group[0].endswith(".txt") else _from_toml(text))
        if (known_digest := digests.get(group[0])) is not None:
            targets = _TARGETS.put(known_digest, targets)
        targets_of.update(dict.fromkeys(group, targets))
    found: list[str] = []
    for path, targets in sorted(targets_of.items()):
        base = posixpath.dirname(path)
        for target in targets:
            target = re.sub(r"^/*\$\{PROJECT_ROOT\}/?", "", target.strip()).rstrip("/")
            folder = posixpath.normpath(posixpath.join(base, target))
            if folder not in (".", "") and not folder.startswith(("..", "/")) and folder not in found:
                found.append(folder)
    if key is not None:
        if len(_RECENT) >= 4:
            _RECENT.pop(next(iter(_RECENT)), None)
        _RECENT[key] = tuple(found)
    return tuple(found)


def package_roots(packages: Iterable[str], dirs: frozenset[str]) -> tuple[str, ...]:
    """The import root of each installed package folder: its `src/` when it has one."""
    roots: list[str] = []
    for folder in packages:
        root = f"{folder}/src" if f"{folder}/src" in dirs else folder
        if root in dirs and root not in roots:
            roots.append(root)
    return tuple(roots)


def declares_packages(path: str) -> bool:
    """True when `path` is a file that may install repository packages (requirements, project files)."""
    return path.endswith(_DECLARING_SUFFIXES) and _declares(path)


def _declares(path: str) -> bool:
    name = posixpath.basename(path)
    return name in PROJECT_FILES or (name.startswith("requirements") and name.endswith(".txt"))


def _from_requirements(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0]
        match = _EDITABLE.match(line) or _LOCAL.match(line)
        url = _FILE_URL.search(line)
        target = match.group(1) if match else url.group(1) if url else None
        if target and "://" not in target and not target.startswith("git+"):
            found.append(target.split("#", 1)[0].split("[", 1)[0])
    return found


def _from_toml(text: str) -> list[str]:
    import tomllib  # only for repositories that have these files: `plan` starts without it

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return []  # a broken project file is reported where the compile environment is read
    tables = [doc.get("tool", {}).get("poetry", {}).get("dependencies", {}),
              doc.get("packages", {}), doc.get("dev-packages", {})]
    for group in (doc.get("tool", {}).get("poetry", {}).get("group", {}) or {}).values():
        if isinstance(group, dict):
            tables.append(group.get("dependencies", {}))
    found = [spec["path"] for table in tables if isinstance(table, dict)
             for spec in table.values() if isinstance(spec, dict) and isinstance(spec.get("path"), str)]
    project = doc.get("project", {})
    for requirement in project.get("dependencies", []) if isinstance(project, dict) else []:
        url = _FILE_URL.search(str(requirement))
        if url and "://" not in url.group(1):
            found.append(url.group(1))
    return found
