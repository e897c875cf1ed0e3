"""Real git repositories in temporary folders, driven through the git command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


class GitRepo:
    """A git repository for tests: write files, commit, branch, rename, delete."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    @classmethod
    def from_tree(cls, root: Path, source: Path, message: str = "initial") -> GitRepo:
        """A repository whose first commit is a copy of `source`."""
        shutil.copytree(source, root, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        repo = cls(root)
        repo.commit(message)
        return repo

    def git(self, *args: str) -> str:
        result = subprocess.run(["git", *args], cwd=self.root, env=_ENV, capture_output=True,
                                text=True, check=True)
        return result.stdout.strip()

    def write(self, path: str, content: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return target

    def append(self, path: str, content: str) -> None:
        with open(self.root / path, "a") as handle:
            handle.write(content)

    def remove(self, path: str) -> None:
        self.git("rm", "-r", "-q", path)

    def rename(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "HEAD") -> None:
        self.git("checkout", "-q", "-b", name, start)

    def checkout(self, ref: str) -> None:
        self.git("checkout", "-q", ref)
