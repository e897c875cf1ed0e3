"""The files of a repository at a revision, or of its working tree, and the changes between two.

Everything else in `pipeline_registry` sees a repository only through a `Snapshot`, so planning
works the same on a commit (the service) and on uncommitted edits (`kfp-bot plan` on a laptop).
A commit is listed with one `git ls-tree` and read through one shared `cat-file --batch`
process; blob ids come from the listing, so a digest never needs a read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol, TypeVar

from pipeline_registry.cache import DigestCache
from pipeline_registry.errors import RepositoryError
from pipeline_registry.gitcli import (
    BlobReader,
    ChangeStatus,
    FileChange,
    RawChange,
    git_output,
    list_tree,
    raw_diff,
    resolve_at_root,
    root_info,
    split_z,
)

T = TypeVar("T")

__all__ = ["Snapshot", "ChangeStatus", "FileChange", "GitSnapshot", "WorktreeSnapshot", "blob_digest",
           "changed_files", "merge_base", "open_snapshot", "read_many", "repository_root", "resolve_revision"]


class Snapshot(Protocol):
    """Read access to every file of a repository at one revision (None: the working tree)."""

    root: Path
    revision: str | None

    def paths(self) -> frozenset[str]:
        """Every file, as a posix path relative to the repository root."""
        ...

    def read(self, path: str) -> bytes | None:
        """The file's bytes (a symlink's target), or None when there is no such file."""
        ...

    def digest(self, path: str) -> str | None:
        """The file's git blob id, or None when there is no such file."""
        ...


def blob_digest(data: bytes) -> str:
    """Git's blob id of `data`, so working-tree files and commits hash alike."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def repository_root(repo: Path) -> Path:
    """The top folder of the git repository at `repo`; `RepositoryError` unless `repo` is that folder."""
    return root_info(Path(repo))[0]


def resolve_revision(repo: Path, rev: str) -> str:
    """The full commit SHA that `rev` (branch, tag, short SHA, `HEAD~1`, ...) names in `repo`."""
    return resolve_at_root(repository_root(repo), rev)


def merge_base(repo: Path, a: str, b: str) -> str:
    """The best common ancestor of two revisions: the base to plan a pull request against."""
    root = repository_root(repo)
    first, second = resolve_at_root(root, a), resolve_at_root(root, b)
    try:
        return git_output(root, "merge-base", first, second).decode().strip()
    except RepositoryError:
        raise RepositoryError(f"revisions '{a}' and '{b}' have no common ancestor in {root}") from None


def changed_files(repo: Path, base: str, head: str | None) -> tuple[FileChange, ...]:
    """Files that differ between `base` and `head` (None: the working tree, untracked files included).

    Renames are detected (`-M`); a rename is one `FileChange` whose `paths` are both names.
    """
    root = repository_root(repo)
    head_sha = None if head is None else resolve_at_root(root, head)
    return tuple(c.change for c in raw_diff(root, resolve_at_root(root, base), head_sha))


def read_many(snapshot: Snapshot, paths: Iterable[str]) -> dict[str, bytes]:
    """Contents of several files (missing ones left out), in one stream when the snapshot can."""
    bulk = getattr(snapshot, "read_many", None)
    if bulk is not None:
        return bulk(paths)
    return {p: data for p in paths if (data := snapshot.read(p)) is not None}


def parse_many(snapshot: Snapshot, paths: Iterable[str], cache: DigestCache[T],
               parse: Callable[[bytes], T]) -> dict[str, T]:
    """`parse` of several files, memoised in `cache` by blob id: only files never parsed are read."""
    result: dict[str, T] = {}
    missing: dict[str, str] = {}
    for path in paths:
        digest = snapshot.digest(path)
        if digest is None:
            continue
        cached = cache.get(digest)
        if cached is None:
            missing[path] = digest
        else:
            result[path] = cached
    if missing:
        for path, text in read_many(snapshot, missing).items():
            result[path] = cache.put(missing[path], parse(text))  # looked up just above: a miss
    return result


def open_snapshot(repo: Path, rev: str | None) -> GitSnapshot | WorktreeSnapshot:
    """The files of `repo` at revision `rev`, or of its working tree when `rev` is None."""
    root, bare = root_info(Path(repo))
    if rev is not None:
        return GitSnapshot(root, resolve_at_root(root, rev))
    if bare:
        raise RepositoryError(f"{root} is a bare repository without a working tree", hint="pass a revision")
    return WorktreeSnapshot(root)


def snapshots_for_change(root: Path, base_sha: str, head_sha: str | None, changes: list[RawChange], *,
                         base_entries: Mapping[str, str] | None = None,
                         head_entries: Mapping[str, str] | None = None,
                         ) -> tuple[GitSnapshot, GitSnapshot | WorktreeSnapshot]:
    """(base, head) snapshots of a change, listing at most one side: the other follows from the diff.

    `base_entries`/`head_entries` are listings known already (kept by tree id from an earlier
    plan): with either, no side is listed at all.
    """
    reader = BlobReader(root)
    changed = {path for c in changes for path in c.change.paths}
    if head_sha is None:
        base = GitSnapshot(root, base_sha, entries=base_entries, reader=reader)
        known = {p: d for p, d in base.entries().items() if p not in changed}
        return base, WorktreeSnapshot(root, known_digests=known)
    if head_entries is None and base_entries is not None:
        return (GitSnapshot(root, base_sha, entries=base_entries, reader=reader),
                GitSnapshot(root, head_sha, entries=apply_changes(base_entries, changes), reader=reader))
    head = GitSnapshot(root, head_sha, entries=head_entries, reader=reader)
    entries = dict(head.entries())
    for raw in changes:
        change = raw.change
        if change.status is not ChangeStatus.DELETED:
            entries.pop(change.path, None)
        if raw.old_blob is not None:
            entries[change.old_path or change.path] = raw.old_blob
    return GitSnapshot(root, base_sha, entries=entries, reader=reader), head


def apply_changes(entries: Mapping[str, str], changes: Iterable[RawChange]) -> dict[str, str]:
    """The listing after `changes` (a diff between two commits) of the listing before them."""
    after = dict(entries)
    for raw in changes:
        change = raw.change
        if change.old_path is not None or change.status is ChangeStatus.DELETED:
            after.pop(change.old_path or change.path, None)
        if raw.new_blob is not None:
            after[change.path] = raw.new_blob
        else:
            after.pop(change.path, None)  # deleted, or no longer a file (a submodule)
    return after


class GitSnapshot:
    """A commit: listed once, read by blob id through a shared `cat-file --batch` process."""

    def __init__(self, root: Path, revision: str, *, entries: Mapping[str, str] | None = None,
                 reader: BlobReader | None = None) -> None:
        self.root = root
        self.revision: str | None = revision
        self._entries = dict(entries) if entries is not None else None
        self._paths: frozenset[str] | None = None
        self._reader = reader or BlobReader(root)

    def entries(self) -> dict[str, str]:
        """Path -> blob id of every file."""
        if self._entries is None:
            self._entries = list_tree(self.root, self.revision or "HEAD")
        return self._entries

    def paths(self) -> frozenset[str]:
        """Every file of the commit (submodules left out)."""
        if self._paths is None:
            self._paths = frozenset(self.entries())
        return self._paths

    def digest(self, path: str) -> str | None:
        """The blob id from the listing: no read needed."""
        entries = self._entries if self._entries is not None else self.entries()
        return entries.get(path)

    def read(self, path: str) -> bytes | None:
        """The file's bytes, through the shared `cat-file` process."""
        blob = self.digest(path)
        return None if blob is None else self._reader.read([blob])[0]

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes]:
        """Several files in one stream of requests and answers."""
        wanted = [(p, b) for p in paths if (b := self.digest(p)) is not None]
        return dict(zip((p for p, _ in wanted), self._reader.read(b for _, b in wanted), strict=False))

    def close(self) -> None:
        """Stop the git process serving reads (a later read starts a new one)."""
        self._reader.close()

    def __enter__(self) -> GitSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WorktreeSnapshot:
    """The working tree: tracked files that still exist plus untracked files git does not ignore."""

    def __init__(self, root: Path, *, known_digests: Mapping[str, str] | None = None) -> None:
        self.root = root
        self.revision: str | None = None
        self._paths: frozenset[str] | None = None
        # Blob ids of files known to be unchanged since a commit: no need to read and hash them.
        self._digests: dict[str, str] = dict(known_digests or {})

    def paths(self) -> frozenset[str]:
        """Tracked files still on disk plus untracked files that git does not ignore."""
        if self._paths is None:
            # One listing: tracked (tag H), deleted from disk (R), untracked and not ignored (?).
            listed = split_z(git_output(self.root, "ls-files", "-z", "-t", "--cached", "--deleted", "--others",
                                        "--exclude-standard"))
            deleted = {entry[2:] for entry in listed if entry.startswith("R ")}
            self._paths = frozenset(entry[2:] for entry in listed
                                    if entry[:2] in ("H ", "? ", "S ", "M ", "C ") and entry[2:] not in deleted
                                    and not entry.endswith("/"))
        return self._paths

    def read(self, path: str) -> bytes | None:
        """The file's bytes from disk (a symlink's target, as git stores it)."""
        if path not in self.paths():
            return None
        target = os.path.join(self.root, path)
        try:
            if os.path.islink(target):
                return os.readlink(target).encode("utf-8", errors="surrogateescape")
            with open(target, "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def digest(self, path: str) -> str | None:
        """The blob id git would give the file's current contents."""
        known = self._digests.get(path)
        if known is None:
            data = self.read(path)
            if data is None:
                return None
            known = self._digests[path] = blob_digest(data)
        return known if path in self.paths() else None

    def close(self) -> None:
        """Nothing to release; present so both snapshot kinds are used alike."""

    def __enter__(self) -> WorktreeSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
