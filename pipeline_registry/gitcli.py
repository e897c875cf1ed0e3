"""The git command line, as `pipeline_registry` uses it: a few processes per plan, never one per file.

Revisions are resolved and the repository checked in one `rev-parse`; a change is one
`diff --raw` (which also names the blob each changed file had before, so the base side of a plan
needs no listing of its own); blobs are read through one long-lived `cat-file --batch` process.
"""

from __future__ import annotations

import enum
import subprocess
import threading
import weakref
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline_registry.errors import RepositoryError

GIT = ("git", "-c", "core.quotepath=off")
NULL_SHA = "0" * 40
BLOB_MODES = ("100644", "100755", "120000")


class ChangeStatus(enum.Enum):
    """What happened to a file between two revisions."""

    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"


@dataclass(frozen=True)
class FileChange:
    """One changed file; a rename keeps the path it had before in `old_path`."""

    path: str
    status: ChangeStatus
    old_path: str | None = None

    @property
    def paths(self) -> tuple[str, ...]:
        """Every path the change touches (both sides of a rename)."""
        return (self.path,) if self.old_path is None else (self.old_path, self.path)


@dataclass(frozen=True)
class RawChange:
    """A `FileChange` with the blob id the file had at base (None when it did not exist) and has at
    head (None when it is gone, or for a working-tree file git has not hashed)."""

    change: FileChange
    old_blob: str | None
    new_blob: str | None = None


def git_output(repo: Path, *args: str) -> bytes:
    """Run one git command in `repo`; failures become a `RepositoryError` with git's message."""
    try:
        result = subprocess.run([*GIT, *args], cwd=repo, capture_output=True, check=False)
    except FileNotFoundError:
        raise RepositoryError("git is not installed", hint="install git and make it available on PATH") from None
    if result.returncode != 0:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        detail = lines[-1] if lines else f"exit status {result.returncode}"
        raise RepositoryError(f"git {args[0]} failed in {repo}: {detail}")
    return result.stdout


def split_z(out: bytes) -> list[str]:
    """NUL-separated git output as paths (undecodable bytes kept as surrogates)."""
    return [part.decode("utf-8", errors="surrogateescape") for part in out.split(b"\0") if part]


def root_info(repo: Path) -> tuple[Path, bool]:
    """(top folder of the repository at `repo`, is it bare); `repo` must be that top folder."""
    repo = Path(repo)
    if not repo.is_dir():
        raise RepositoryError(f"{repo} does not exist or is not a folder", hint="pass the path of a git clone")
    try:
        out = git_output(repo, "rev-parse", "--is-bare-repository", "--show-toplevel")
    except RepositoryError:
        bare = subprocess.run([*GIT, "rev-parse", "--is-bare-repository"], cwd=repo, capture_output=True)
        if bare.returncode == 0 and bare.stdout.strip() == b"true":
            return repo.resolve(), True
        raise RepositoryError(f"{repo} is not a git repository",
                              hint="pass the root folder of a git clone (git init / git clone)") from None
    lines = out.decode().splitlines()
    if lines and lines[0] == "true":
        return repo.resolve(), True
    top = Path(lines[1]).resolve()
    if top != repo.resolve():
        raise RepositoryError(f"{repo} is inside the git repository {top} but is not its root", hint=f"pass {top}")
    return top, False


def _check_rev(rev: str) -> None:
    if not rev or rev.startswith("-") or any(ch.isspace() for ch in rev):
        raise RepositoryError(f"invalid revision {rev!r}", hint="pass a branch, tag or commit SHA")


def resolve_at_root(root: Path, rev: str) -> str:
    """The full commit SHA `rev` names, in a root already checked by `root_info` (one git call)."""
    _check_rev(rev)
    result = subprocess.run([*GIT, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"],
                            cwd=root, capture_output=True, check=False)
    if result.returncode != 0:
        raise RepositoryError(f"unknown revision '{rev}' in {root}",
                              hint="check the branch or commit name, or fetch it first")
    return result.stdout.decode().strip()


def resolve_all(repo: Path, *revs: str) -> tuple[Path, tuple[str, ...]]:
    """Check the repository and resolve several revisions with one git call when all is well."""
    for rev in revs:
        _check_rev(rev)
    repo = Path(repo)
    if repo.is_dir():
        result = subprocess.run([*GIT, "rev-parse", "--is-bare-repository", "--show-toplevel",
                                 *(f"{rev}^{{commit}}" for rev in revs)], cwd=repo, capture_output=True)
        lines = result.stdout.decode().splitlines()
        if result.returncode == 0 and len(lines) == 2 + len(revs) and lines[0] == "false" \
                and Path(lines[1]).resolve() == repo.resolve():
            return Path(lines[1]).resolve(), tuple(lines[2:])
    root, _ = root_info(repo)  # raises the precise error
    return root, tuple(resolve_at_root(root, rev) for rev in revs)


def raw_diff(root: Path, base_sha: str, head_sha: str | None) -> list[RawChange]:
    """The changes from `base_sha` to `head_sha` (None: working tree incl. untracked), renames detected."""
    args = ["diff", "-z", "--raw", "--no-abbrev", "-M", "--no-ext-diff", "--no-textconv", base_sha]
    if head_sha is not None:
        args.append(head_sha)
    fields = split_z(git_output(root, *args))
    changes: list[RawChange] = []
    index = 0
    while index < len(fields):
        meta = fields[index].lstrip(":").split(" ")
        old_mode, new_mode, old_sha, new_sha, code = meta[0], meta[1], meta[2], meta[3], meta[4][:1]
        old_blob = old_sha if old_sha != NULL_SHA and old_mode in BLOB_MODES else None
        new_blob = new_sha if new_sha != NULL_SHA and new_mode in BLOB_MODES else None
        if code in ("R", "C"):
            old, new = fields[index + 1], fields[index + 2]
            index += 3
            if code == "R":
                changes.append(RawChange(FileChange(new, ChangeStatus.RENAMED, old_path=old), old_blob, new_blob))
            else:
                changes.append(RawChange(FileChange(new, ChangeStatus.ADDED), None, new_blob))
            continue
        path = fields[index + 1]
        index += 2
        status = {"A": ChangeStatus.ADDED, "D": ChangeStatus.DELETED}.get(code, ChangeStatus.MODIFIED)
        changes.append(RawChange(FileChange(path, status), old_blob, new_blob))
    if head_sha is None:
        known = {c.change.path for c in changes}
        for path in split_z(git_output(root, "ls-files", "-z", "--others", "--exclude-standard")):
            if path not in known and not path.endswith("/"):
                changes.append(RawChange(FileChange(path, ChangeStatus.ADDED), None))
    return sorted(changes, key=lambda c: (c.change.path, c.change.old_path or ""))


def tree_ids(root: Path, *shas: str) -> tuple[str, ...]:
    """The tree id of each commit (one git call): what a commit's files are, whatever its history."""
    out = git_output(root, "rev-parse", *(f"{sha}^{{tree}}" for sha in shas)).decode().split()
    if len(out) != len(shas):
        raise RepositoryError(f"git rev-parse named {len(out)} trees for {len(shas)} commits in {root}")
    return tuple(out)


def list_tree(root: Path, sha: str) -> dict[str, str]:
    """Path -> blob id of every file of a commit (submodules left out)."""
    entries: dict[str, str] = {}
    for record in git_output(root, "ls-tree", "-r", "-z", "--full-tree", sha).split(b"\0"):
        if not record:
            continue
        meta, _, name = record.partition(b"\t")
        _mode, kind, blob = meta.split(b" ")
        if kind == b"blob":
            entries[name.decode("utf-8", errors="surrogateescape")] = blob.decode()
    return entries


# Every blob id read through `cat-file` by this process, with how often: the proof (tests,
# benchmarks) that an unchanged blob is read at most once however many plans reuse it.
BLOB_READS: Counter[str] = Counter()
_KEEP_BYTES = 64 << 20


class BlobReader:
    """One `git cat-file --batch` process per repository, shared by every snapshot of a plan."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        # Blobs read during this plan: several parses of one file (imports, component loads,
        # inline images) and one content at several paths cost one read. Bounded in bytes.
        self._kept: dict[str, bytes] = {}
        self._kept_bytes = 0

    def read(self, blobs: Iterable[str]) -> list[bytes]:
        """Contents of the blobs, in order; requests stream in while answers are read."""
        wanted = list(blobs)
        if not wanted:
            return []
        with self._lock:
            missing = list(dict.fromkeys(b for b in wanted if b not in self._kept))
            found = dict(zip(missing, self._fetch(missing), strict=False)) if missing else {}
            for blob, data in found.items():
                if self._kept_bytes + len(data) <= _KEEP_BYTES:
                    self._kept[blob] = data
                    self._kept_bytes += len(data)
            return [found[b] if b in found else self._kept[b] for b in wanted]

    def _fetch(self, wanted: list[str]) -> list[bytes]:
        BLOB_READS.update(wanted)
        request = b"".join(blob.encode() + b"\n" for blob in wanted)
        process = self._start()
        assert process.stdin is not None and process.stdout is not None
        writer = threading.Thread(target=_write_all, args=(process.stdin, request), daemon=True)
        writer.start()
        try:
            return [_read_object(process.stdout, blob) for blob in wanted]
        except (OSError, RepositoryError):
            self.close()
            raise
        finally:
            writer.join(timeout=5)

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            self._process = subprocess.Popen([*GIT, "cat-file", "--batch"], cwd=self.root, stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            self._finalizer = weakref.finalize(self, _stop, self._process)
        return self._process

    def close(self) -> None:
        """Stop the process (a later read starts a new one)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._process = None
        self._kept, self._kept_bytes = {}, 0


def _read_object(stdout: IO[bytes], blob: str) -> bytes:
    header = stdout.readline()
    parts = header.split()
    if len(parts) != 3 or not parts[2].isdigit():
        raise RepositoryError(f"cannot read blob {blob}: {header.decode(errors='replace').strip() or 'git stopped'}")
    size = int(parts[2])
    data = stdout.read(size + 1)  # the object and the newline after it, in one call
    return data[:size]


def _write_all(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
        stream.flush()
    except OSError:
        pass  # the reader sees the closed pipe and reports it


def _stop(process: subprocess.Popen[bytes]) -> None:
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
    finally:
        if process.stdout is not None:
            process.stdout.close()
