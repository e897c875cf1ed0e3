"""What planning learns about a whole tree, kept by git tree id so that the next plan starts from it.

A plan asks, on each side of a change, questions whose answers need a pass over the whole tree:
the file listing, the layout (pipelines, components), which components copy a given path into
their image (`CopyIndex`), which Python files reachable from a pipeline name a module in their
imports, and which folders the repository installs as packages. A git tree id names a tree's
files exactly, so these `TreeFacts` are kept by tree id, in memory (the service) and on disk next
to the parse cache (the command line), and a later plan of the same base loads them instead of
walking the tree. The other side of a change that only edits files shares them, updated for the
edited files alone (`RepoGraph.share_structure`): a warm plan's cost follows the change.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_registry.disk_cache import SUFFIX, read_cache_file, write_cache_file
from pipeline_registry.globs import has_wildcard, literal_prefix

if TYPE_CHECKING:  # annotations only: the parsers are not needed to load a tree's facts
    from pipeline_registry.component_loads import Mentions
    from pipeline_registry.dockerfile import ImageContext

_FORMAT = 1
_KEEP_FILES = 4  # trees kept on disk (newest first): about 9 MB each at 45,000 files
_KEEP_MEMORY = 2  # in the service: tens of MB each at 45,000 files
_WORD = re.compile(r"[A-Za-z0-9_.\-]+")  # what `component_loads` counts as one spelt word


def source_scope(context: str, pattern: str) -> str:
    """The path or folder every file a `COPY` source copies lies at or under ("" = anywhere)."""
    base = f"{context}/" if context else ""
    if not pattern:
        return context
    literal = pattern if not has_wildcard(pattern) else literal_prefix(pattern)
    return (base + literal).rstrip("/")


@dataclass(frozen=True)
class CopyIndex:
    """Component keys by what their images copy: a changed path finds the images it may enter
    by looking up itself and its folders, instead of matching every component's patterns."""

    scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Dockerfiles and .dockerignore files -> the components they build.
    direct: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def candidates(self, paths: Iterable[str]) -> set[str]:
        """Keys of the components whose image may take in one of `paths` (a superset: the caller
        matches each candidate's sources exactly)."""
        found: set[str] = set()
        for path in paths:
            found.update(self.direct.get(path, ()))
            walk = path
            while True:
                found.update(self.scopes.get(walk, ()))
                if not walk:
                    break
                walk = posixpath.dirname(walk)
        return found


def build_copy_index(contexts: Mapping[str, ImageContext | None]) -> CopyIndex:
    """The index of every component's image context (component key -> context)."""
    return _add({}, {}, contexts)


def _keys(context: ImageContext | None) -> tuple[set[str], list[str]]:
    if context is None:
        return set(), []
    direct = [context.dockerfile] + ([context.dockerignore_file] if context.dockerignore_file else [])
    return {source_scope(context.context, s.source) for s in context.sources}, direct


def _add(scopes: dict[str, list[str]], direct: dict[str, list[str]],
         contexts: Mapping[str, ImageContext | None]) -> CopyIndex:
    for key, context in contexts.items():
        keyed_scopes, keyed_direct = _keys(context)
        for scope in keyed_scopes:
            scopes.setdefault(scope, []).append(key)
        for path in keyed_direct:
            direct.setdefault(path, []).append(key)
    return CopyIndex({k: tuple(v) for k, v in scopes.items() if v}, {k: tuple(v) for k, v in direct.items() if v})


@dataclass(frozen=True)
class LoadIndex:
    """Pipelines whose file calls `load_component*`, by the words it spells out: the pipelines
    that may load a changed component folder are found by its name, without looking at the
    others (a pipeline loading `components/x` must spell `x`)."""

    words: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Pipelines that load by computed names.
    always: frozenset[str] = frozenset()
    # Every pipeline whose file calls `load_component*` (for folder names that are no plain word).
    callers: frozenset[str] = frozenset()

    def candidates(self, folders: Iterable[str], default_parents: Iterable[str]) -> set[str]:
        """Pipelines that may load one of `folders` (a superset: their loads are then resolved)."""
        defaults = set(default_parents)
        found = set(self.always)
        by_parent: dict[str, set[str]] = {}
        for folder in folders:
            parent, name = posixpath.split(folder)
            if not _is_word(name):
                return found | self.callers
            by_parent.setdefault(parent, set()).add(name)
        spelt: dict[str, frozenset[str]] = {}

        def spelling(word: str) -> frozenset[str]:
            if word not in spelt:
                spelt[word] = frozenset(self.words.get(word, ()))
            return spelt[word]

        for parent, names in by_parent.items():
            base = posixpath.basename(parent)
            if parent not in defaults and _is_word(base):  # few files spell a folder's parent: start there
                found.update(p for p in self.words.get(base, ()) if any(p in spelling(n) for n in names))
            else:
                for name in names:
                    found |= spelling(name)
        return found

    def replacing(self, old: Mapping[str, Mentions | None], new: Mapping[str, Mentions | None]) -> LoadIndex:
        """The index with some pipelines' entries (their file changed) replaced."""
        words = {k: list(v) for k, v in self.words.items()}
        always, callers = set(self.always) - set(old), set(self.callers) - set(old)
        for name, mentions in old.items():
            for word in mentions.words if mentions is not None else ():
                if name in words.get(word, ()):
                    words[word].remove(name)
        return _add_loads(words, always, callers, new)


def build_load_index(mentions: Mapping[str, Mentions | None]) -> LoadIndex:
    """The index of every pipeline (pipeline name -> what its file mentions)."""
    return _add_loads({}, set(), set(), mentions)


def _is_word(text: str) -> bool:
    return _WORD.fullmatch(text) is not None


def _add_loads(words: dict[str, list[str]], always: set[str], callers: set[str],
               mentions: Mapping[str, Mentions | None]) -> LoadIndex:
    for name, found in mentions.items():
        if found is None or not found.calls_load:
            continue
        callers.add(name)
        if found.dynamic:
            always.add(name)
            continue
        for word in found.words:
            words.setdefault(word, []).append(name)
    return LoadIndex({k: tuple(v) for k, v in words.items() if v}, frozenset(always), frozenset(callers))


def config_key(config: object) -> str:
    """A short id of a configuration: facts computed under another configuration are not reused."""
    return hashlib.sha1(repr(config).encode()).hexdigest()[:16]


@dataclass
class TreeFacts:
    """The listing of one tree and, under one configuration, its layout and reverse indexes."""

    tree: str
    config: str
    entries: dict[str, str]
    # RepoGraph's layout properties (pipelines, shared, component_dirs, ...), by name.
    layout: dict[str, Any]
    copy_index: CopyIndex
    load_index: LoadIndex
    installed: tuple[str, ...]
    # The import graph's files, folders, reachable files and indexes (`ImportGraph.known`).
    imports: dict[str, Any]


class TreeStore:
    """`TreeFacts` by tree id: the last few in memory, the last `_KEEP_FILES` in `folder`."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._memory: OrderedDict[str, TreeFacts] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tree: str) -> TreeFacts | None:
        """The facts kept for `tree`, or None."""
        with self._lock:
            facts = self._memory.get(tree)
            if facts is not None:
                self._memory.move_to_end(tree)
                return facts
        if self.folder is None:
            return None
        try:
            stored = read_cache_file(self.folder / f"{tree}{SUFFIX}")
        except FileNotFoundError:
            return None
        except Exception:  # noqa: BLE001 - a damaged file only costs a walk of the tree
            return None
        if not (isinstance(stored, tuple) and len(stored) == 2 and stored[0] == _FORMAT
                and isinstance(stored[1], TreeFacts) and stored[1].tree == tree):
            return None
        self._remember(stored[1])
        return stored[1]

    def put(self, facts: TreeFacts) -> None:
        """Keep `facts` (written to disk at once: a plan ends right after)."""
        self._remember(facts)
        if self.folder is None:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_cache_file(self.folder, (_FORMAT, facts), f"{facts.tree}{SUFFIX}")
            _prune(self.folder)
        except OSError:
            pass  # a store that cannot be written only costs time

    def forget(self) -> None:
        """Drop what is held in memory (the disk stays): as a new process starts."""
        with self._lock:
            self._memory.clear()

    def _remember(self, facts: TreeFacts) -> None:
        with self._lock:
            self._memory[facts.tree] = facts
            self._memory.move_to_end(facts.tree)
            while len(self._memory) > _KEEP_MEMORY:
                self._memory.popitem(last=False)


def _prune(folder: Path) -> None:
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        if path.name.startswith("tmp-"):
            continue  # another process is writing it
        try:
            found.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:
            continue
    for _, path in sorted(found, reverse=True)[_KEEP_FILES:]:
        path.unlink(missing_ok=True)
