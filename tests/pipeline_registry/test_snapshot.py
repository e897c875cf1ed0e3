"""Snapshots of commits and of the working tree, and the changes between revisions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline_registry.errors import RepositoryError
from pipeline_registry.snapshot import (
    ChangeStatus,
    FileChange,
    GitSnapshot,
    WorktreeSnapshot,
    blob_digest,
    changed_files,
    merge_base,
    open_snapshot,
    read_many,
    resolve_revision,
)
from tests.support.gitrepo import GitRepo


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    git_repo.write(".gitignore", "build/\n")
    git_repo.write("a.txt", "first\n")
    git_repo.write("pkg/b.py", "import os\n")
    git_repo.write("pkg/with space/c.yaml", "x: 1\n")
    git_repo.write("unicodé/ü.txt", "ü\n")
    git_repo.commit("base")
    return git_repo


def test_a_commit_lists_every_file_with_posix_paths(repo: GitRepo) -> None:
    with open_snapshot(repo.root, "HEAD") as snapshot:
        assert isinstance(snapshot, GitSnapshot)
        assert snapshot.paths() == {".gitignore", "a.txt", "pkg/b.py", "pkg/with space/c.yaml", "unicodé/ü.txt"}
        assert snapshot.revision == repo.head()


def test_reads_and_digests_match_git(repo: GitRepo) -> None:
    with open_snapshot(repo.root, "main") as snapshot:
        assert snapshot.read("pkg/with space/c.yaml") == b"x: 1\n"
        assert snapshot.read("unicodé/ü.txt") == "ü\n".encode()
        assert snapshot.read("missing.txt") is None and snapshot.digest("missing.txt") is None
        assert snapshot.digest("a.txt") == repo.git("hash-object", "a.txt") == blob_digest(b"first\n")


def test_an_old_revision_still_reads_old_contents(repo: GitRepo) -> None:
    base = repo.head()
    repo.write("a.txt", "second\n")
    repo.commit("edit")
    with open_snapshot(repo.root, base) as old, open_snapshot(repo.root, "HEAD") as new:
        assert (old.read("a.txt"), new.read("a.txt")) == (b"first\n", b"second\n")


def test_many_reads_share_one_stream(repo: GitRepo) -> None:
    for index in range(200):
        repo.write(f"many/{index}.txt", f"file {index}\n" * index)
    repo.commit("many")
    with open_snapshot(repo.root, "HEAD") as snapshot:
        wanted = sorted(p for p in snapshot.paths() if p.startswith("many/"))
        bulk = read_many(snapshot, [*wanted, "missing"])
        assert len(bulk) == 200 and "missing" not in bulk
        assert all(bulk[p] == snapshot.read(p) == (repo.root / p).read_bytes() for p in wanted)


def test_the_working_tree_has_untracked_files_but_not_ignored_or_deleted_ones(repo: GitRepo) -> None:
    repo.write("new.txt", "untracked\n")
    repo.write("build/out.txt", "ignored\n")
    repo.append("a.txt", "uncommitted\n")
    (repo.root / "pkg/b.py").unlink()
    with open_snapshot(repo.root, None) as snapshot:
        assert isinstance(snapshot, WorktreeSnapshot) and snapshot.revision is None
        assert snapshot.paths() == {".gitignore", "a.txt", "new.txt", "pkg/with space/c.yaml", "unicodé/ü.txt"}
        assert snapshot.read("a.txt") == b"first\nuncommitted\n"
        assert snapshot.read("build/out.txt") is None and snapshot.read("pkg/b.py") is None
        assert snapshot.digest("new.txt") == repo.git("hash-object", "new.txt")


def test_a_symlink_reads_as_its_target_like_git(repo: GitRepo) -> None:
    os.symlink("a.txt", repo.root / "link")
    repo.commit("link")
    with open_snapshot(repo.root, "HEAD") as commit, open_snapshot(repo.root, None) as tree:
        assert commit.read("link") == tree.read("link") == b"a.txt"
        assert commit.digest("link") == tree.digest("link")


def test_changed_files_between_commits(repo: GitRepo) -> None:
    base = repo.head()
    repo.append("a.txt", "more\n")
    repo.write("added.txt", "new\n")
    repo.remove("pkg/b.py")
    repo.rename("pkg/with space/c.yaml", "conf/c.yaml")
    head = repo.commit("changes")
    assert changed_files(repo.root, base, head) == (
        FileChange("a.txt", ChangeStatus.MODIFIED),
        FileChange("added.txt", ChangeStatus.ADDED),
        FileChange("conf/c.yaml", ChangeStatus.RENAMED, old_path="pkg/with space/c.yaml"),
        FileChange("pkg/b.py", ChangeStatus.DELETED),
    )


def test_a_rename_counts_as_both_paths() -> None:
    change = FileChange("new/x.py", ChangeStatus.RENAMED, old_path="old/x.py")
    assert change.paths == ("old/x.py", "new/x.py")


def test_changed_files_in_the_working_tree_include_untracked(repo: GitRepo) -> None:
    repo.append("a.txt", "wip\n")
    repo.write("untracked.txt", "x\n")
    repo.write("build/ignored.txt", "x\n")
    repo.git("add", "a.txt")
    (repo.root / "pkg/b.py").unlink()
    assert changed_files(repo.root, "HEAD", None) == (
        FileChange("a.txt", ChangeStatus.MODIFIED),
        FileChange("pkg/b.py", ChangeStatus.DELETED),
        FileChange("untracked.txt", ChangeStatus.ADDED),
    )


def test_revisions_resolve_to_full_shas(repo: GitRepo) -> None:
    first = repo.head()
    repo.branch("feature")
    repo.write("f.txt", "f\n")
    second = repo.commit("feature")
    assert resolve_revision(repo.root, "main") == first
    assert resolve_revision(repo.root, "feature") == second
    assert resolve_revision(repo.root, second[:8]) == second
    assert resolve_revision(repo.root, "HEAD~1") == first
    assert merge_base(repo.root, "main", "feature") == first


@pytest.mark.parametrize("rev", ["nope", "HEAD~99", "--all", "a b", ""])
def test_unknown_or_invalid_revisions_are_clear_errors(repo: GitRepo, rev: str) -> None:
    with pytest.raises(RepositoryError, match="revision") as error:
        open_snapshot(repo.root, rev)
    assert "Traceback" not in str(error.value)


def test_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryError) as error:
        open_snapshot(tmp_path, "HEAD")
    assert str(error.value) == (f"{tmp_path} is not a git repository "
                                "(pass the root folder of a git clone (git init / git clone))")
    with pytest.raises(RepositoryError, match="does not exist"):
        changed_files(tmp_path / "nowhere", "HEAD", None)


def test_a_bare_clone_has_commits_but_no_working_tree(repo: GitRepo, tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.root), str(bare))
    with open_snapshot(bare, "main") as snapshot:
        assert snapshot.read("a.txt") == b"first\n"
    with pytest.raises(RepositoryError, match="bare repository"):
        open_snapshot(bare, None)
