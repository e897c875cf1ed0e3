"""Which repository Python files a Python file imports, directly and transitively.

A pipeline file or a component's code that imports `utils.io` must be re-tested when
`utils/io.py` changes. Imports are read statically, nothing from the repository is executed
(`import_statements`), and each statement is resolved to repository files by `import_resolution`.
Who imports a changed module is found backwards, through an index of the names each file's
imports mention, so only candidate files are resolved.
"""

from __future__ import annotations

import posixpath
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from pipeline_registry.cache import DigestCache
from pipeline_registry.import_resolution import package_dirs, resolve_from, resolve_from_roots, resolve_import
from pipeline_registry.import_statements import ImportStmt, statements_of
from pipeline_registry.snapshot import Snapshot

# Derived from the statements (kept on disk) in a few microseconds: not worth a disk entry each.
_TOKENS: DigestCache[frozenset[str]] = DigestCache("import_tokens", persist=False)


class ImportGraph:
    """Import edges between the Python files of one snapshot, computed on demand."""

    def __init__(self, snapshot: Snapshot, twin: ImportGraph | None = None,
                 roots: tuple[str, ...] = ()) -> None:
        self.snapshot = snapshot
        self.paths = snapshot.paths()
        self.roots = roots
        # A graph of a snapshot with the same files: its answers hold for files with equal contents.
        self._twin = twin
        # Files whose imports matter (pipeline files, component code): only what they reach,
        # transitively, is parsed. None: every Python file.
        self.entry_files: frozenset[str] | None = None
        # The Python files that differ from the twin's, when the caller knows them (the diff).
        self.edited: frozenset[str] | None = None
        self._direct: dict[str, frozenset[str]] = {}
        self._resolved: dict[ImportStmt, tuple[frozenset[str], list[str]]] = {}  # `resolve_from_roots` by statement
        self._by_token: dict[str, frozenset[str]] = {}  # `_candidates` when following the twin
        self._importers: dict[str, tuple[str, ...]] = {}

    @cached_property
    def _same_files(self) -> bool:
        """True when the twin lists the same files (a change that only edits files)."""
        return self._twin is not None and self._twin.paths == self.paths

    @cached_property
    def python_files(self) -> tuple[str, ...]:
        """Every `.py` file of the snapshot, sorted."""
        if self._same_files:
            return self._twin.python_files  # type: ignore[union-attr]
        return tuple(sorted(p for p in self.paths if p.endswith(".py")))

    @cached_property
    def dirs(self) -> frozenset[str]:
        """Folders holding Python files: where a module name may resolve."""
        if self._same_files:
            return self._twin.dirs  # type: ignore[union-attr]
        return package_dirs(self.python_files)

    @cached_property
    def _edited(self) -> frozenset[str]:
        """Python files whose contents differ from the twin's (only when both list the same files)."""
        twin = self._twin
        assert twin is not None
        if self.edited is not None:
            return frozenset(p for p in self.edited if p.endswith(".py") and p in self.paths)
        return frozenset(p for p in self.python_files if twin.snapshot.digest(p) != self.snapshot.digest(p))

    @cached_property
    def _follows_twin(self) -> bool:
        """True when the twin's reachable files and index can be updated for the edited files alone."""
        twin = self._twin
        return self._same_files and twin is not None and twin.roots == self.roots \
            and twin.entry_files == self.entry_files

    @cached_property
    def reachable(self) -> frozenset[str]:
        """The Python files the entry files import, transitively, and the entry files themselves.

        With a twin (same files, same entry files), only the edited files are followed: an
        unchanged file the twin reached imports what it imported there.
        """
        if self.entry_files is None:
            return frozenset(self.python_files)
        if self._follows_twin:
            known = self._twin.reachable  # type: ignore[union-attr]
            start = [p for p in self._edited if p in known]
        else:
            known, start = frozenset(), sorted(self.entry_files)
        found = set(known) | set(start)
        frontier = start
        while frontier:
            self.statements(p for p in frontier if p not in self._direct)  # one read for a level
            following = []
            for path in frontier:
                for dep in sorted(self.direct(path)):
                    if dep not in found:
                        found.add(dep)
                        following.append(dep)
            frontier = following
        return frozenset(found)

    def _candidates(self, token: str) -> set[str]:
        """Files whose imports name `token`: from the twin's index plus the files edited since
        (and those they newly reach), so the other side of a plan never indexes every file again."""
        if not self._follows_twin:
            return set(self._token_index.get(token, ()))
        known = self._by_token.get(token)  # thousands of `main.py` files look up `main`
        if known is None:
            twin = self._twin
            assert twin is not None
            found = set(twin._token_index.get(token, ()))
            for path in self._fresh:
                found.discard(path)
                if path in self.reachable and token in self._tokens_of(path):
                    found.add(path)
            known = self._by_token[token] = frozenset(found)
        return set(known)

    @cached_property
    def _fresh(self) -> frozenset[str]:
        """Files whose index entries differ from the twin's: the edited ones and those newly reached."""
        return self._edited | (self.reachable - self._twin.reachable)  # type: ignore[union-attr]

    def known(self) -> dict[str, Any]:
        """What `seed` takes: the Python files and folders, the files reachable from the entry
        files, the token index and the direct imports of each reachable file."""
        return {"python_files": self.python_files, "dirs": self.dirs, "reachable": self.reachable,
                "_token_index": self._token_index,
                "direct": {p: tuple(sorted(self.direct(p))) for p in sorted(self.reachable)}}

    def seed(self, known: Mapping[str, Any]) -> None:
        """Start from what `known` gave for the same files, entry files and import roots."""
        self.__dict__.update((k, v) for k, v in known.items() if k != "direct")
        self._direct.update((p, frozenset(d)) for p, d in known["direct"].items())

    def _tokens_of(self, path: str) -> frozenset[str]:
        digest = self.snapshot.digest(path) or ""
        tokens = _TOKENS.get(digest)
        if tokens is None:
            stmts = self.statements([path]).get(path, ())
            tokens = _TOKENS.put(digest, frozenset().union(*(s.tokens for s in stmts)))
        return tokens

    def statements(self, paths: Iterable[str]) -> dict[str, tuple[ImportStmt, ...]]:
        """Import statements of several files, reading only those not parsed before."""
        return statements_of(self.snapshot, paths)

    def direct(self, path: str) -> frozenset[str]:
        """Repository files `path` imports itself."""
        known = self._direct.get(path)
        if known is None and self._twin is not None and self._twin.roots == self.roots \
                and path in self._twin._direct and \
                self._twin.snapshot.digest(path) == self.snapshot.digest(path):
            known = self._direct[path] = self._twin._direct[path]
        if known is None:
            stmts = self.statements([path]).get(path, ())
            known = self._direct[path] = frozenset(self._resolve(path, stmts))
        return known

    def _resolve(self, path: str, stmts: Iterable[ImportStmt]) -> set[str]:
        """`resolve_import` of each statement of `path`, united; what an absolute statement finds
        from the root and the import roots is worked out once (thousands of files import `utils`)."""
        folder = posixpath.dirname(path)
        local = bool(folder) and folder not in self.roots
        resolved: set[str] = set()
        for stmt in stmts:
            if stmt.level:
                resolved |= resolve_import(stmt, path, self.paths, self.dirs, self.roots, folder)
                continue
            shared = self._resolved.get(stmt)
            if shared is None:
                shared = self._resolved[stmt] = resolve_from_roots(stmt, self.paths, self.dirs, self.roots)
            resolved |= shared[0]
            if local:
                resolve_from(folder, shared[1], stmt.names, self.paths, self.dirs, resolved)
        resolved.discard(path)
        return resolved

    def closure(self, roots: Iterable[str]) -> dict[str, str]:
        """Every file the roots import transitively, each with the file that imports it first."""
        roots = sorted(set(roots))
        seen: dict[str, str] = {}
        queue = deque(roots)
        while queue:
            current = queue.popleft()
            for dep in sorted(self.direct(current)):
                if dep not in seen and dep not in roots:
                    seen[dep] = current
                    queue.append(dep)
        return seen

    @cached_property
    def _token_index(self) -> dict[str, tuple[str, ...]]:
        index: dict[str, list[str]] = defaultdict(list)
        files = sorted(self.reachable)
        digests = {p: self.snapshot.digest(p) or "" for p in files}
        known = {p: _TOKENS.get(d) for p, d in digests.items()}
        parsed = self.statements([p for p, tokens in known.items() if tokens is None])  # in one stream
        for path in files:
            tokens = known[path]
            if tokens is None:
                tokens = _TOKENS.put(digests[path], frozenset(t for s in parsed.get(path, ()) for t in s.tokens))
            for token in tokens:
                index[token].append(path)
        return {token: tuple(files) for token, files in index.items()}

    def importers_of(self, path: str) -> tuple[str, ...]:
        """Files that import `path` directly."""
        known = self._importers.get(path)
        if known is None:
            folder, name = posixpath.split(path)
            candidates = self._candidates(name[:-3] if name != "__init__.py" else posixpath.basename(folder))
            if name == "__init__.py":
                candidates.update(p for p in self.reachable if p.startswith(f"{folder}/") or not folder)
            known = self._importers[path] = tuple(sorted(c for c in candidates if c != path and path in self.direct(c)))
        return known

    def importers(self, targets: Iterable[str]) -> dict[str, dict[str, str]]:
        """Every file that imports a target transitively: target -> the file it imports it through.

        Targets map to themselves, so a changed root file is found with `reach[f][f] == f`.
        """
        reach: dict[str, dict[str, str]] = {}
        queue: deque[str] = deque()
        for target in sorted(set(targets)):
            if target in self.paths and target.endswith(".py"):
                reach[target] = {target: target}
                queue.append(target)
        while queue:
            current = queue.popleft()
            for importer in self.importers_of(current):
                entry = reach.setdefault(importer, {})
                grew = False
                for target in reach[current]:
                    if target not in entry:
                        entry[target] = current
                        grew = True
                if grew:
                    queue.append(importer)
        return reach

