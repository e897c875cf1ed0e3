"""One scratch copy of a repository shared by every compile of a check, reset between compiles.

Compiling runs the repository's code, which may write anywhere in its working tree, and the bot
puts its images into the copy, so each compile needs a tree equal to the repository's. Copying
the whole tree per pipeline costs seconds on a large repository; a stat walk costs milliseconds.
So `ScratchTree` copies once, records every file's (size, modification time), and `reset` puts
back what a compile changed: files it modified or deleted are copied again from the repository,
files and folders it created are removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Never copied: version control, caches, local virtual environments.
NOT_COPIED = (".git", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox",
              "node_modules")


def copy_tree(source: Path, target: Path) -> None:
    """Copy a repository's working tree (links kept as links, caches and `.git` left out)."""
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns(*NOT_COPIED))


class ScratchTree:
    """A copy of `repo_dir` at `root`, restored to the repository's state by `reset`."""

    def __init__(self, repo_dir: Path) -> None:
        self.repo_dir = Path(repo_dir).resolve()
        self._tmp = tempfile.TemporaryDirectory(prefix="kfp-bot-scratch-", ignore_cleanup_errors=True)
        self.root = Path(self._tmp.name) / "repo"
        copy_tree(self.repo_dir, self.root)
        self._files, self._dirs = _state(self.root)

    def reset(self) -> None:
        """Undo every change made in the copy since it was made."""
        files, dirs = _state(self.root)
        for relative, stamp in files.items():
            if self._files.get(relative) != stamp:
                (self.root / relative).unlink()
        for relative in sorted(dirs - self._dirs, key=len, reverse=True):
            shutil.rmtree(self.root / relative, ignore_errors=True)
        for relative, stamp in self._files.items():
            if files.get(relative) != stamp:
                target = self.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                source = self.repo_dir / relative
                if source.is_symlink():
                    os.symlink(os.readlink(source), target)
                else:
                    shutil.copy2(source, target)
        self._files, self._dirs = _state(self.root)

    def close(self) -> None:
        """Remove the copy."""
        self._tmp.cleanup()

    def __enter__(self) -> ScratchTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _state(root: Path) -> tuple[dict[str, tuple[int, int, int]], set[str]]:
    """Every file (and link) under `root` with (size, mtime, mode), and every folder."""
    files: dict[str, tuple[int, int, int]] = {}
    dirs: set[str] = set()
    for folder, subdirs, names in os.walk(root):
        base = os.path.relpath(folder, root)
        prefix = "" if base == "." else base + "/"
        for name in subdirs:
            path = os.path.join(folder, name)
            if os.path.islink(path):  # a link to a folder is a file entry: never walked into
                stat = os.lstat(path)
                files[prefix + name] = (stat.st_size, stat.st_mtime_ns, stat.st_mode)
            else:
                dirs.add(prefix + name)
        for name in names:
            stat = os.lstat(os.path.join(folder, name))
            files[prefix + name] = (stat.st_size, stat.st_mtime_ns, stat.st_mode)
    return files, dirs
